variable "project_id" {
  type        = string
  description = "Google Cloud project that holds the cluster, network and service accounts."

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{4,28}[a-z0-9]$", var.project_id))
    error_message = "The project_id must be a project id (6-30 lower-case letters, digits and hyphens)."
  }
}

variable "region" {
  type        = string
  description = "Region of the network and the Cloud NAT, such as europe-west1."
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "The region must be a Google Cloud region such as europe-west1."
  }
}

variable "zone" {
  type        = string
  description = "Zone of the cluster, inside region: a zonal cluster's control plane is covered by GKE's free tier credit."
  default     = "europe-west1-b"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", var.zone))
    error_message = "The zone must be a Google Cloud zone such as europe-west1-b."
  }
}

variable "cluster_name" {
  type        = string
  description = "Name of the GKE cluster; also the prefix of the network, router and service accounts."
  default     = "todo-workflows"

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{1,20}$", var.cluster_name))
    error_message = "The cluster_name must be 2-21 characters of lower-case letters, digits and hyphens, starting with a letter (service account ids derive from it)."
  }
}

variable "release_channel" {
  type        = string
  description = "GKE release channel that picks and upgrades the Kubernetes version."
  default     = "REGULAR"

  validation {
    condition     = contains(["RAPID", "REGULAR", "STABLE"], var.release_channel)
    error_message = "The release_channel must be RAPID, REGULAR or STABLE."
  }
}

variable "system_machine_type" {
  type        = string
  description = "Machine type of the system pool, which is tainted for GKE's managed components only."
  default     = "e2-standard-2"

  validation {
    condition     = can(regex("^[a-z0-9]+-[a-z]+-[0-9]+$", var.system_machine_type))
    error_message = "The system_machine_type must be a machine type such as e2-standard-2."
  }
}

variable "system_node_count" {
  type        = number
  description = "Nodes of the system pool."
  default     = 1

  validation {
    condition     = var.system_node_count >= 1 && var.system_node_count <= 5
    error_message = "The system_node_count must be from 1 to 5."
  }
}

variable "user_machine_type" {
  type        = string
  description = "Machine type of the user pool, which runs Dapr and the app."
  default     = "e2-standard-4"

  validation {
    condition     = can(regex("^[a-z0-9]+-[a-z]+-[0-9]+$", var.user_machine_type))
    error_message = "The user_machine_type must be a machine type such as e2-standard-4."
  }
}

variable "user_node_min_count" {
  type        = number
  description = "Fewest nodes the cluster autoscaler keeps in the user pool."
  default     = 1

  validation {
    condition     = var.user_node_min_count >= 0 && var.user_node_min_count <= 50
    error_message = "The user_node_min_count must be from 0 to 50."
  }
}

variable "user_node_max_count" {
  type        = number
  description = "Most nodes the cluster autoscaler may add to the user pool (at least user_node_min_count)."
  default     = 3

  validation {
    condition     = var.user_node_max_count >= 1 && var.user_node_max_count <= 50
    error_message = "The user_node_max_count must be from 1 to 50."
  }
}

variable "user_spot" {
  type        = bool
  description = "Run the user pool on Spot VMs (much cheaper, can be preempted: the app tolerates it, Kafka brokers less so)."
  default     = false
}

variable "subnet_cidr" {
  type        = string
  description = "Primary range of the nodes' subnet."
  default     = "10.10.0.0/20"

  validation {
    condition     = can(cidrhost(var.subnet_cidr, 0))
    error_message = "The subnet_cidr must be an IPv4 range such as 10.10.0.0/20."
  }
}

variable "pods_cidr" {
  type        = string
  description = "Secondary range of the subnet for pods."
  default     = "10.100.0.0/16"

  validation {
    condition     = can(cidrhost(var.pods_cidr, 0))
    error_message = "The pods_cidr must be an IPv4 range such as 10.100.0.0/16."
  }
}

variable "services_cidr" {
  type        = string
  description = "Secondary range of the subnet for Services."
  default     = "10.101.0.0/20"

  validation {
    condition     = can(cidrhost(var.services_cidr, 0))
    error_message = "The services_cidr must be an IPv4 range such as 10.101.0.0/20."
  }
}

variable "master_cidr" {
  type        = string
  description = "The /28 of the control plane's private endpoint (must not overlap the other ranges)."
  default     = "172.16.0.0/28"

  validation {
    condition     = can(cidrhost(var.master_cidr, 0)) && endswith(var.master_cidr, "/28")
    error_message = "The master_cidr must be an IPv4 /28 range such as 172.16.0.0/28."
  }
}

variable "api_allowed_cidrs" {
  type        = list(string)
  description = "Address ranges allowed to reach the Kubernetes API's public endpoint (your workstation or CI egress)."

  validation {
    condition     = length(var.api_allowed_cidrs) > 0 && alltrue([for cidr in var.api_allowed_cidrs : can(cidrhost(cidr, 0)) && cidr != "0.0.0.0/0"])
    error_message = "The api_allowed_cidrs must list at least one IPv4 range, and not 0.0.0.0/0."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse `terraform destroy` of the cluster until this is set to false and applied."
  default     = true
}

variable "app_namespace" {
  type        = string
  description = "Namespace of the app; its ServiceAccount there may act as the secret store's Google service account."
  default     = "todo"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.app_namespace))
    error_message = "The app_namespace must be a Kubernetes namespace name (lower-case DNS label)."
  }
}

variable "app_service_account" {
  type        = string
  description = "Name of the app's ServiceAccount (the chart's serviceAccount.name), bound to the secret store's Google service account."
  default     = "todo-workflows"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.app_service_account))
    error_message = "The app_service_account must be a Kubernetes object name."
  }
}

variable "dapr_ha_enabled" {
  type        = bool
  description = "Run the Dapr control plane with three replicas of each service."
  default     = false
}

variable "dapr_scheduler_memory_limit_mib" {
  type        = number
  description = "Memory limit of the Dapr scheduler in MiB (GOMEMLIMIT at 90 % of it); 0: none. It holds one timer job per active series: 882-945 MiB at 100,000 series without a limit, so 1280 leaves room for 100,000."
  default     = 0
}

variable "install_app" {
  type        = bool
  description = "Install the todo-workflows chart with values-gke.yaml once Dapr is up."
  default     = false
}

variable "app_values" {
  type        = any
  description = "Further chart values over values-gke.yaml and what this module sets (image, ingress host, …)."
  default     = {}

  validation {
    condition     = can(keys(var.app_values))
    error_message = "The app_values must be an object of chart values."
  }
}

variable "kubeconfig_path" {
  type        = string
  description = "Where to write the cluster's kubeconfig (it uses gke-gcloud-auth-plugin); null writes kubeconfig-<cluster_name> beside this module."
  default     = null
}

variable "labels" {
  type        = map(string)
  description = "Labels on every resource that takes them."
  default     = { project = "todo-workflows" }
}
