# A small zonal GKE cluster on a private-node VPC: a system pool reserved for GKE's managed
# components and an autoscaled user pool for Dapr and the app; workload identity lets the
# app's Dapr secret store read Secret Manager as a Google service account of its own.

locals {
  kubeconfig_path = coalesce(var.kubeconfig_path, "${path.root}/kubeconfig-${var.cluster_name}")
  workload_pool   = "${var.project_id}.svc.id.goog"
  # Least privilege for the nodes: logs, metrics and image pulls, nothing else.
  node_roles = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
  ])
  node_oauth_scopes = ["https://www.googleapis.com/auth/cloud-platform"]
}

resource "google_project_service" "apis" {
  for_each = toset(["compute.googleapis.com", "container.googleapis.com", "secretmanager.googleapis.com"])

  service = each.value
  # Other workloads in the project may use them too.
  disable_on_destroy = false
}

resource "google_compute_network" "this" {
  name                    = "${var.cluster_name}-vpc"
  auto_create_subnetworks = false

  depends_on = [google_project_service.apis]
}

resource "google_compute_subnetwork" "nodes" {
  name                     = "${var.cluster_name}-nodes"
  region                   = var.region
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true

  secondary_ip_range {
    range_name    = "pods"
    ip_cidr_range = var.pods_cidr
  }

  secondary_ip_range {
    range_name    = "services"
    ip_cidr_range = var.services_cidr
  }

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# Private nodes reach the internet (image registries, Kafka, SMTP, JWKS) through Cloud NAT.
resource "google_compute_router" "this" {
  name    = "${var.cluster_name}-router"
  region  = var.region
  network = google_compute_network.this.id
}

resource "google_compute_router_nat" "this" {
  name                               = "${var.cluster_name}-nat"
  router                             = google_compute_router.this.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# A private cluster's control plane reaches the nodes only on 443 and 10250; admission webhooks
# on other ports need a rule: Dapr's sidecar injector (4000) and operator webhook (19443).
resource "google_compute_firewall" "webhooks" {
  name                    = "${var.cluster_name}-control-plane-webhooks"
  network                 = google_compute_network.this.id
  direction               = "INGRESS"
  source_ranges           = [var.master_cidr]
  target_service_accounts = [google_service_account.nodes.email]

  allow {
    protocol = "tcp"
    ports    = ["4000", "19443"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_service_account" "nodes" {
  account_id   = "${var.cluster_name}-nodes"
  display_name = "Nodes of the ${var.cluster_name} GKE cluster"
}

resource "google_project_iam_member" "nodes" {
  for_each = local.node_roles

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_container_cluster" "this" {
  #checkov:skip=CKV_GCP_12:Dataplane V2 (datapath_provider ADVANCED_DATAPATH) enforces NetworkPolicies itself; the legacy Calico network_policy add-on cannot be combined with it.
  #checkov:skip=CKV_GCP_65:Cluster access is granted through IAM roles on the project; Google Groups for RBAC need a Workspace or Cloud Identity domain that this module cannot assume.
  name                     = var.cluster_name
  location                 = var.zone
  network                  = google_compute_network.this.id
  subnetwork               = google_compute_subnetwork.nodes.id
  networking_mode          = "VPC_NATIVE"
  datapath_provider        = "ADVANCED_DATAPATH"
  remove_default_node_pool = true
  initial_node_count       = 1
  deletion_protection      = var.deletion_protection
  enable_shielded_nodes    = true
  # Pod-to-pod traffic on one node goes through the VPC too (flow logs, firewall rules).
  enable_intranode_visibility = true
  resource_labels             = var.labels

  release_channel {
    channel = var.release_channel
  }

  ip_allocation_policy {
    cluster_secondary_range_name  = "pods"
    services_secondary_range_name = "services"
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = false
    master_ipv4_cidr_block  = var.master_cidr
  }

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.api_allowed_cidrs
      content {
        cidr_block   = cidr_blocks.value
        display_name = "operator ${cidr_blocks.key}"
      }
    }
  }

  workload_identity_config {
    workload_pool = local.workload_pool
  }

  # The project's Binary Authorization policy decides which images may run (allow-all until
  # the operator restricts it to their registry).
  binary_authorization {
    evaluation_mode = "PROJECT_SINGLETON_POLICY_ENFORCE"
  }

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  # The default pool is removed at once; this only shapes its short-lived node.
  node_config {
    service_account = google_service_account.nodes.email
    oauth_scopes    = local.node_oauth_scopes
    metadata        = { disable-legacy-endpoints = "true" }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }

  lifecycle {
    precondition {
      condition     = startswith(var.zone, "${var.region}-")
      error_message = "The zone must be inside region."
    }
    precondition {
      condition     = var.user_node_max_count >= var.user_node_min_count
      error_message = "The user_node_max_count must be at least user_node_min_count."
    }
  }
}

# Two pools that differ only in size, autoscaling and one taint: the system pool is reserved
# for GKE's managed components (kube-dns, metrics agents, …), which tolerate that taint.
resource "google_container_node_pool" "pools" {
  for_each = {
    system = {
      machine_type = var.system_machine_type
      node_count   = var.system_node_count
      autoscaling  = null
      spot         = false
      taints       = [{ key = "components.gke.io/gke-managed-components", value = "true", effect = "NO_SCHEDULE" }]
    }
    user = {
      machine_type = var.user_machine_type
      node_count   = null
      autoscaling  = { min = var.user_node_min_count, max = var.user_node_max_count }
      spot         = var.user_spot
      taints       = []
    }
  }

  name       = each.key
  cluster    = google_container_cluster.this.id
  location   = var.zone
  node_count = each.value.node_count

  dynamic "autoscaling" {
    for_each = each.value.autoscaling == null ? [] : [each.value.autoscaling]
    content {
      min_node_count = autoscaling.value.min
      max_node_count = autoscaling.value.max
    }
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  upgrade_settings {
    max_surge       = 1
    max_unavailable = 0
  }

  node_config {
    machine_type    = each.value.machine_type
    spot            = each.value.spot
    image_type      = "COS_CONTAINERD"
    disk_type       = "pd-balanced"
    disk_size_gb    = 50
    service_account = google_service_account.nodes.email
    oauth_scopes    = local.node_oauth_scopes
    labels          = { "todo-workflows/pool" = each.key }
    resource_labels = var.labels
    metadata        = { disable-legacy-endpoints = "true" }

    dynamic "taint" {
      for_each = each.value.taints
      content {
        key    = taint.value.key
        value  = taint.value.value
        effect = taint.value.effect
      }
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }
}

# The app's Dapr secret store (secretstores.gcp.secretmanager) runs as this Google service
# account: its Kubernetes ServiceAccount may impersonate it, and it may read secret values.
resource "google_service_account" "secrets" {
  account_id   = "${var.cluster_name}-secrets"
  display_name = "Dapr secret store of ${var.cluster_name}"
}

resource "google_project_iam_member" "secrets_reader" {
  project = var.project_id
  role    = "roles/secretmanager.secretAccessor"
  member  = "serviceAccount:${google_service_account.secrets.email}"
}

resource "google_service_account_iam_member" "app_workload_identity" {
  service_account_id = google_service_account.secrets.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${local.workload_pool}[${var.app_namespace}/${var.app_service_account}]"

  # The workload pool exists once a cluster in the project enables workload identity.
  depends_on = [google_container_cluster.this]
}

resource "local_sensitive_file" "kubeconfig" {
  filename = local.kubeconfig_path
  content = templatefile("${path.module}/kubeconfig.tftpl", {
    name   = "gke-${var.project_id}-${var.zone}-${var.cluster_name}"
    server = "https://${google_container_cluster.this.endpoint}"
    ca     = google_container_cluster.this.master_auth[0].cluster_ca_certificate
  })
  file_permission = "0600"
}

module "dapr" {
  source = "../modules/dapr"

  ha_enabled                 = var.dapr_ha_enabled
  scheduler_memory_limit_mib = var.dapr_scheduler_memory_limit_mib
  install_app                = var.install_app
  app_namespace              = var.app_namespace
  app_chart_path             = "${path.module}/../../charts/todo-workflows"
  app_values_file            = "${path.module}/../../charts/todo-workflows/values-gke.yaml"
  app_values = [
    {
      serviceAccount = {
        name        = var.app_service_account
        annotations = { "iam.gke.io/gcp-service-account" = google_service_account.secrets.email }
      }
      dapr = { secretStore = { type = "gcp", gcp = { projectId = var.project_id } } }
    },
    var.app_values,
  ]

  # The system pool refuses Dapr's pods: the user pool must be up.
  depends_on = [google_container_node_pool.pools, google_service_account_iam_member.app_workload_identity]
}
