variable "tenancy_ocid" {
  type        = string
  description = "OCID of the tenancy: availability domains are listed there, and the dynamic group for the secret store lives there."

  validation {
    condition     = can(regex("^ocid1\\.tenancy\\.", var.tenancy_ocid))
    error_message = "The tenancy_ocid must be a tenancy OCID (ocid1.tenancy.…)."
  }
}

variable "compartment_ocid" {
  type        = string
  description = "OCID of the compartment that holds the VCN, the cluster and the node pool."

  validation {
    condition     = can(regex("^ocid1\\.(compartment|tenancy)\\.", var.compartment_ocid))
    error_message = "The compartment_ocid must be a compartment (or tenancy) OCID."
  }
}

variable "region" {
  type        = string
  description = "OCI region, such as eu-frankfurt-1: the always-free A1 capacity must be in your home region."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+-[0-9]+$", var.region))
    error_message = "The region must be an OCI region identifier such as eu-frankfurt-1."
  }
}

variable "oci_profile" {
  type        = string
  description = "Profile of ~/.oci/config used by the provider and by the OCI CLI token command in the kubeconfig."
  default     = "DEFAULT"

  validation {
    condition     = length(var.oci_profile) > 0
    error_message = "The oci_profile must not be empty."
  }
}

variable "cluster_name" {
  type        = string
  description = "Name of the OKE cluster; also the prefix of the network resources."
  default     = "todo-workflows"

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{1,30}$", var.cluster_name))
    error_message = "The cluster_name must be 2-31 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes version of the control plane and the nodes, in OKE's form (v1.33.1); `oci ce cluster-options get --cluster-option-id all` lists them."
  default     = "v1.33.1"

  validation {
    condition     = can(regex("^v1\\.[0-9]+\\.[0-9]+$", var.kubernetes_version))
    error_message = "The kubernetes_version must look like v1.33.1."
  }
}

variable "always_free" {
  type        = bool
  description = "Refuse a node pool larger than the always-free Ampere allowance (4 OCPUs and 24 GB in total)."
  default     = true
}

variable "node_count" {
  type        = number
  description = "Nodes in the pool (spread over the availability domains)."
  default     = 2

  validation {
    condition     = var.node_count >= 1 && var.node_count <= 10 && floor(var.node_count) == var.node_count
    error_message = "The node_count must be a whole number from 1 to 10."
  }
}

variable "node_ocpus" {
  type        = number
  description = "OCPUs of each VM.Standard.A1.Flex node."
  default     = 2

  validation {
    condition     = var.node_ocpus >= 1 && var.node_ocpus <= 80 && floor(var.node_ocpus) == var.node_ocpus
    error_message = "The node_ocpus must be a whole number from 1 to 80."
  }
}

variable "node_memory_gbs" {
  type        = number
  description = "Memory of each node in GB (A1.Flex allows 1 to 64 GB per OCPU)."
  default     = 12

  validation {
    condition     = var.node_memory_gbs >= 2 && var.node_memory_gbs <= 512
    error_message = "The node_memory_gbs must be between 2 and 512."
  }
}

variable "node_boot_volume_gbs" {
  type        = number
  description = "Boot volume of each node in GB; the always-free allowance is 200 GB of block storage in total."
  default     = 50

  validation {
    condition     = var.node_boot_volume_gbs >= 50 && var.node_boot_volume_gbs <= 200
    error_message = "The node_boot_volume_gbs must be between 50 (OKE's minimum) and 200."
  }
}

variable "node_image_id" {
  type        = string
  description = "OCID of the node image; null picks the newest Oracle Linux aarch64 OKE image for kubernetes_version."
  default     = null

  validation {
    condition     = var.node_image_id == null || can(regex("^ocid1\\.image\\.", var.node_image_id))
    error_message = "The node_image_id must be null or an image OCID (ocid1.image.…)."
  }
}

variable "ssh_public_key" {
  type        = string
  description = "OpenSSH public key installed on the nodes (they sit in a private subnet: reach them through the Bastion service); null installs none."
  default     = null

  validation {
    condition     = var.ssh_public_key == null || can(regex("^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp[0-9]+) ", var.ssh_public_key))
    error_message = "The ssh_public_key must be null or an OpenSSH public key line."
  }
}

variable "vcn_cidr" {
  type        = string
  description = "Address range of the VCN (a /16): the API endpoint, load balancer and node subnets are carved from it, and x.x.20.0/24 is left for a database subnet."
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.vcn_cidr, 0)) && endswith(var.vcn_cidr, "/16")
    error_message = "The vcn_cidr must be an IPv4 /16 range such as 10.0.0.0/16."
  }
}

variable "api_allowed_cidrs" {
  type        = list(string)
  description = "Address ranges allowed to reach the Kubernetes API on its public endpoint (your workstation or CI egress), besides the nodes."

  validation {
    condition     = length(var.api_allowed_cidrs) > 0 && alltrue([for cidr in var.api_allowed_cidrs : can(cidrhost(cidr, 0)) && cidr != "0.0.0.0/0"])
    error_message = "The api_allowed_cidrs must list at least one IPv4 range, and not 0.0.0.0/0."
  }
}

variable "vault_ocid" {
  type        = string
  description = "OCID of an OCI Vault whose secrets the app's Dapr secret store reads through the nodes' instance principal; null uses the Kubernetes secret store."
  default     = null

  validation {
    condition     = var.vault_ocid == null || can(regex("^ocid1\\.vault\\.", var.vault_ocid))
    error_message = "The vault_ocid must be null or a vault OCID (ocid1.vault.…)."
  }
}

variable "dapr_ha_enabled" {
  type        = bool
  description = "Run the Dapr control plane with three replicas of each service (costs about 1 GB more memory on the free nodes)."
  default     = false
}

variable "dapr_scheduler_memory_limit_mib" {
  type        = number
  description = "Memory limit of the Dapr scheduler in MiB (GOMEMLIMIT at 90 % of it); 0: none. It holds one timer job per active series: 882-945 MiB at 100,000 series without a limit, so 1280 leaves room for 100,000."
  default     = 0
}

variable "install_app" {
  type        = bool
  description = "Install the todo-workflows chart with values-oke.yaml once Dapr is up."
  default     = false
}

variable "app_values" {
  type        = any
  description = "Further chart values over values-oke.yaml and what this module sets (image tag, ingress host, …)."
  default     = {}

  validation {
    condition     = can(keys(var.app_values))
    error_message = "The app_values must be an object of chart values."
  }
}

variable "kubeconfig_path" {
  type        = string
  description = "Where to write the cluster's kubeconfig (it calls the OCI CLI for tokens); null writes kubeconfig-<cluster_name> beside this module."
  default     = null
}

variable "freeform_tags" {
  type        = map(string)
  description = "Free-form tags on every resource that takes them."
  default     = { project = "todo-workflows" }
}
