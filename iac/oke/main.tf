# An OKE basic cluster (no control-plane fee) on the always-free Ampere A1 shape: a VCN with a
# public subnet for the API endpoint, a public subnet for load balancers and a private one for
# the nodes (out through a NAT gateway, to Oracle services through a service gateway).

locals {
  api_subnet_cidr  = cidrsubnet(var.vcn_cidr, 12, 0) # x.x.0.0/28
  lb_subnet_cidr   = cidrsubnet(var.vcn_cidr, 8, 1)  # x.x.1.0/24
  node_subnet_cidr = cidrsubnet(var.vcn_cidr, 8, 10) # x.x.10.0/24; x.x.20.0/24 stays free for a database
  pods_cidr        = "10.244.0.0/16"
  services_cidr    = "10.96.0.0/16"

  oracle_services = data.oci_core_services.all.services[0]
  ads             = data.oci_identity_availability_domains.all.availability_domains[*].name

  # Newest first, as OKE lists them: an Oracle Linux aarch64 image built for this Kubernetes version.
  # (One line per condition: checkov's HCL parser rejects an expression broken across lines.)
  oke_image_pattern = "aarch64.*OKE-${replace(trimprefix(var.kubernetes_version, "v"), ".", "\\.")}-"
  oke_images = [
    for source in data.oci_containerengine_node_pool_option.images.sources : source.image_id
    if can(regex(local.oke_image_pattern, source.source_name)) && !strcontains(source.source_name, "GPU")
  ]
  node_image_id = var.node_image_id != null ? var.node_image_id : try(local.oke_images[0], null)

  fits_always_free = alltrue([
    var.node_count * var.node_ocpus <= 4,
    var.node_count * var.node_memory_gbs <= 24,
    var.node_count * var.node_boot_volume_gbs <= 200,
  ])

  kubeconfig      = yamldecode(data.oci_containerengine_cluster_kube_config.this.content)
  api_server      = "https://${oci_containerengine_cluster.this.endpoints[0].public_endpoint}"
  kubeconfig_path = coalesce(var.kubeconfig_path, "${path.root}/kubeconfig-${var.cluster_name}")
}

data "oci_identity_availability_domains" "all" {
  compartment_id = var.tenancy_ocid
}

data "oci_core_services" "all" {
  filter {
    name   = "name"
    values = ["All .* Services In Oracle Services Network"]
    regex  = true
  }
}

resource "oci_core_vcn" "this" {
  compartment_id = var.compartment_ocid
  cidr_blocks    = [var.vcn_cidr]
  display_name   = "${var.cluster_name}-vcn"
  dns_label      = substr(replace(var.cluster_name, "-", ""), 0, 15)
  freeform_tags  = var.freeform_tags
}

resource "oci_core_internet_gateway" "this" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.cluster_name}-igw"
  enabled        = true
  freeform_tags  = var.freeform_tags
}

resource "oci_core_nat_gateway" "this" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.cluster_name}-nat"
  freeform_tags  = var.freeform_tags
}

resource "oci_core_service_gateway" "this" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.cluster_name}-sgw"
  freeform_tags  = var.freeform_tags

  services {
    service_id = local.oracle_services.id
  }
}

resource "oci_core_route_table" "public" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.cluster_name}-public"
  freeform_tags  = var.freeform_tags

  route_rules {
    destination       = "0.0.0.0/0"
    destination_type  = "CIDR_BLOCK"
    network_entity_id = oci_core_internet_gateway.this.id
  }
}

resource "oci_core_route_table" "private" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.cluster_name}-private"
  freeform_tags  = var.freeform_tags

  route_rules {
    destination       = "0.0.0.0/0"
    destination_type  = "CIDR_BLOCK"
    network_entity_id = oci_core_nat_gateway.this.id
  }

  route_rules {
    destination       = local.oracle_services.cidr_block
    destination_type  = "SERVICE_CIDR_BLOCK"
    network_entity_id = oci_core_service_gateway.this.id
  }
}

# Kubernetes API endpoint: the operator's ranges and the nodes in; the nodes and Oracle
# services (OKE's own control traffic) out.
resource "oci_core_security_list" "api" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.cluster_name}-api"
  freeform_tags  = var.freeform_tags

  dynamic "ingress_security_rules" {
    for_each = toset(concat(var.api_allowed_cidrs, [local.node_subnet_cidr]))
    content {
      description = "Kubernetes API"
      protocol    = "6"
      source      = ingress_security_rules.value
      tcp_options {
        min = 6443
        max = 6443
      }
    }
  }

  ingress_security_rules {
    description = "Worker nodes to the control plane"
    protocol    = "6"
    source      = local.node_subnet_cidr
    tcp_options {
      min = 12250
      max = 12250
    }
  }

  ingress_security_rules {
    description = "Path MTU discovery"
    protocol    = "1"
    source      = local.node_subnet_cidr
    icmp_options {
      type = 3
      code = 4
    }
  }

  egress_security_rules {
    description      = "Control plane to OKE and other Oracle services"
    destination      = local.oracle_services.cidr_block
    destination_type = "SERVICE_CIDR_BLOCK"
    protocol         = "6"
    tcp_options {
      min = 443
      max = 443
    }
  }

  egress_security_rules {
    description = "Control plane to the nodes"
    destination = local.node_subnet_cidr
    protocol    = "6"
  }

  egress_security_rules {
    description = "Path MTU discovery"
    destination = local.node_subnet_cidr
    protocol    = "1"
    icmp_options {
      type = 3
      code = 4
    }
  }
}

# Worker nodes: each other (pod overlay), the control plane and load balancers in; anything
# out through the NAT gateway (image pulls, Kafka, SMTP, JWKS).
resource "oci_core_security_list" "nodes" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.cluster_name}-nodes"
  freeform_tags  = var.freeform_tags

  ingress_security_rules {
    description = "Node to node and pod to pod"
    protocol    = "all"
    source      = local.node_subnet_cidr
  }

  ingress_security_rules {
    description = "Control plane to kubelet and pods"
    protocol    = "6"
    source      = local.api_subnet_cidr
  }

  ingress_security_rules {
    description = "Load balancers to node ports"
    protocol    = "6"
    source      = local.lb_subnet_cidr
    tcp_options {
      min = 30000
      max = 32767
    }
  }

  ingress_security_rules {
    description = "Load balancer health checks of kube-proxy"
    protocol    = "6"
    source      = local.lb_subnet_cidr
    tcp_options {
      min = 10256
      max = 10256
    }
  }

  ingress_security_rules {
    description = "Path MTU discovery"
    protocol    = "1"
    source      = var.vcn_cidr
    icmp_options {
      type = 3
      code = 4
    }
  }

  egress_security_rules {
    description = "Anything, through the NAT and service gateways"
    destination = "0.0.0.0/0"
    protocol    = "all"
  }
}

# Load balancers made for Services of type LoadBalancer (the ingress controller): HTTP(S) in,
# node ports out.
resource "oci_core_security_list" "lb" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.cluster_name}-lb"
  freeform_tags  = var.freeform_tags

  dynamic "ingress_security_rules" {
    for_each = toset([80, 443])
    content {
      description = "Public HTTP(S) to the ingress controller"
      protocol    = "6"
      source      = "0.0.0.0/0"
      tcp_options {
        min = ingress_security_rules.value
        max = ingress_security_rules.value
      }
    }
  }

  egress_security_rules {
    description = "Node ports and kube-proxy health checks"
    destination = local.node_subnet_cidr
    protocol    = "6"
    tcp_options {
      min = 10256
      max = 32767
    }
  }
}

resource "oci_core_subnet" "api" {
  compartment_id    = var.compartment_ocid
  vcn_id            = oci_core_vcn.this.id
  cidr_block        = local.api_subnet_cidr
  display_name      = "${var.cluster_name}-api"
  dns_label         = "api"
  route_table_id    = oci_core_route_table.public.id
  security_list_ids = [oci_core_security_list.api.id]
  freeform_tags     = var.freeform_tags
}

resource "oci_core_subnet" "lb" {
  compartment_id    = var.compartment_ocid
  vcn_id            = oci_core_vcn.this.id
  cidr_block        = local.lb_subnet_cidr
  display_name      = "${var.cluster_name}-lb"
  dns_label         = "lb"
  route_table_id    = oci_core_route_table.public.id
  security_list_ids = [oci_core_security_list.lb.id]
  freeform_tags     = var.freeform_tags
}

resource "oci_core_subnet" "nodes" {
  compartment_id             = var.compartment_ocid
  vcn_id                     = oci_core_vcn.this.id
  cidr_block                 = local.node_subnet_cidr
  display_name               = "${var.cluster_name}-nodes"
  dns_label                  = "nodes"
  prohibit_public_ip_on_vnic = true
  route_table_id             = oci_core_route_table.private.id
  security_list_ids          = [oci_core_security_list.nodes.id]
  freeform_tags              = var.freeform_tags
}

resource "oci_containerengine_cluster" "this" {
  #checkov:skip=CKV2_OCI_6:PodSecurityPolicy was removed in Kubernetes 1.25 and OKE refuses it on current versions; the built-in Pod Security Admission replaces it.
  #checkov:skip=CKV2_OCI_3:The endpoint's traffic rules live in the security list of its own subnet (oci_core_security_list.api); an NSG would repeat them.
  compartment_id     = var.compartment_ocid
  name               = var.cluster_name
  kubernetes_version = var.kubernetes_version
  vcn_id             = oci_core_vcn.this.id
  # The always-free tier covers basic clusters; enhanced ones bill the control plane.
  type          = "BASIC_CLUSTER"
  freeform_tags = var.freeform_tags

  cluster_pod_network_options {
    cni_type = "FLANNEL_OVERLAY"
  }

  endpoint_config {
    is_public_ip_enabled = true
    subnet_id            = oci_core_subnet.api.id
  }

  options {
    service_lb_subnet_ids = [oci_core_subnet.lb.id]

    kubernetes_network_config {
      pods_cidr     = local.pods_cidr
      services_cidr = local.services_cidr
    }

    add_ons {
      is_kubernetes_dashboard_enabled = false
      is_tiller_enabled               = false
    }
  }
}

data "oci_containerengine_node_pool_option" "images" {
  node_pool_option_id = oci_containerengine_cluster.this.id
  compartment_id      = var.compartment_ocid
}

resource "oci_containerengine_node_pool" "this" {
  cluster_id         = oci_containerengine_cluster.this.id
  compartment_id     = var.compartment_ocid
  name               = "${var.cluster_name}-a1"
  kubernetes_version = var.kubernetes_version
  node_shape         = "VM.Standard.A1.Flex"
  ssh_public_key     = var.ssh_public_key
  freeform_tags      = var.freeform_tags

  node_shape_config {
    ocpus         = var.node_ocpus
    memory_in_gbs = var.node_memory_gbs
  }

  node_source_details {
    source_type             = "IMAGE"
    image_id                = local.node_image_id
    boot_volume_size_in_gbs = var.node_boot_volume_gbs
  }

  node_config_details {
    size                                = var.node_count
    is_pv_encryption_in_transit_enabled = true
    freeform_tags                       = var.freeform_tags

    dynamic "placement_configs" {
      for_each = local.ads
      content {
        availability_domain = placement_configs.value
        subnet_id           = oci_core_subnet.nodes.id
      }
    }
  }

  initial_node_labels {
    key   = "todo-workflows/pool"
    value = "a1"
  }

  lifecycle {
    precondition {
      condition     = !var.always_free || local.fits_always_free
      error_message = "The node pool exceeds the always-free allowance (4 OCPUs, 24 GB memory, 200 GB block storage in total); shrink it or set always_free = false."
    }
    precondition {
      condition     = local.node_image_id != null
      error_message = "No Oracle Linux aarch64 OKE image was found for this kubernetes_version; set node_image_id."
    }
  }
}

data "oci_containerengine_cluster_kube_config" "this" {
  cluster_id    = oci_containerengine_cluster.this.id
  token_version = "2.0.0"
  endpoint      = "PUBLIC_ENDPOINT"
}

resource "local_sensitive_file" "kubeconfig" {
  filename        = local.kubeconfig_path
  content         = data.oci_containerengine_cluster_kube_config.this.content
  file_permission = "0600"
}

# The app's Dapr secret store (secretstores.oci.vault) signs in as the node it runs on: a
# dynamic group of this compartment's instances may read the vault's secrets, nothing more.
resource "oci_identity_dynamic_group" "nodes" {
  count = var.vault_ocid == null ? 0 : 1

  compartment_id = var.tenancy_ocid
  name           = "${var.cluster_name}-nodes"
  description    = "Worker nodes of the ${var.cluster_name} OKE cluster (Dapr's OCI Vault secret store)."
  matching_rule  = "ALL {instance.compartment.id = '${var.compartment_ocid}'}"
  freeform_tags  = var.freeform_tags
}

resource "oci_identity_policy" "secrets" {
  count = var.vault_ocid == null ? 0 : 1

  compartment_id = var.compartment_ocid
  name           = "${var.cluster_name}-secrets"
  description    = "Lets the ${var.cluster_name} nodes read the secrets of one vault."
  statements = [
    "Allow dynamic-group ${oci_identity_dynamic_group.nodes[0].name} to read secret-family in compartment id ${var.compartment_ocid} where target.vault.id = '${var.vault_ocid}'",
  ]
  freeform_tags = var.freeform_tags
}

module "dapr" {
  source = "../modules/dapr"

  ha_enabled                 = var.dapr_ha_enabled
  scheduler_memory_limit_mib = var.dapr_scheduler_memory_limit_mib
  install_app                = var.install_app
  app_chart_path             = "${path.module}/../../charts/todo-workflows"
  app_values_file            = "${path.module}/../../charts/todo-workflows/values-oke.yaml"
  app_values = [
    {
      dapr = {
        secretStore = {
          # Without a vault, Dapr's built-in Kubernetes secret store.
          type = var.vault_ocid == null ? "kubernetes" : "oci"
          oci = {
            region          = var.region
            vaultOcid       = var.vault_ocid == null ? "" : var.vault_ocid
            compartmentOcid = var.compartment_ocid
          }
        }
      }
    },
    var.app_values,
  ]

  # The nodes must be there before anything is scheduled.
  depends_on = [oci_containerengine_node_pool.this]
}
