variable "subscription_id" {
  type        = string
  description = "Azure subscription that pays for the cluster (azurerm 4 needs it named)."

  validation {
    condition     = can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.subscription_id))
    error_message = "The subscription_id must be a subscription GUID."
  }
}

variable "location" {
  type        = string
  description = "Azure region, such as westeurope."
  default     = "westeurope"

  validation {
    condition     = can(regex("^[a-z]+[a-z0-9]*$", var.location))
    error_message = "The location must be an Azure region name without spaces, such as westeurope."
  }
}

variable "cluster_name" {
  type        = string
  description = "Name of the AKS cluster; also the prefix of the resource group, network and identity."
  default     = "todo-workflows"

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{1,40}$", var.cluster_name))
    error_message = "The cluster_name must be 2-41 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes minor version (1.33) or exact version; null takes AKS's default. Patch upgrades follow automatically."
  default     = null

  validation {
    condition     = var.kubernetes_version == null || can(regex("^1\\.[0-9]+(\\.[0-9]+)?$", var.kubernetes_version))
    error_message = "The kubernetes_version must be null or look like 1.33 or 1.33.2."
  }
}

variable "sku_tier" {
  type        = string
  description = "Control plane tier: Free (no SLA, no fee) or Standard (uptime SLA)."
  default     = "Free"

  validation {
    condition     = contains(["Free", "Standard"], var.sku_tier)
    error_message = "The sku_tier must be Free or Standard."
  }
}

variable "system_node_vm_size" {
  type        = string
  description = "VM size of the system pool, which runs only critical add-ons (CoreDNS, metrics-server, …); it needs a local temp disk of 64 GB or more for the ephemeral OS disk (the 'd' sizes)."
  default     = "Standard_D2ads_v5"

  validation {
    condition     = can(regex("^Standard_", var.system_node_vm_size))
    error_message = "The system_node_vm_size must be an Azure VM size such as Standard_D2ads_v5."
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

variable "user_node_vm_size" {
  type        = string
  description = "VM size of the user pool, which runs Dapr and the app; like the system pool it needs a local temp disk of 64 GB or more."
  default     = "Standard_D4ads_v5"

  validation {
    condition     = can(regex("^Standard_", var.user_node_vm_size))
    error_message = "The user_node_vm_size must be an Azure VM size such as Standard_D2ads_v5."
  }
}

variable "user_node_min_count" {
  type        = number
  description = "Fewest nodes the cluster autoscaler keeps in the user pool."
  default     = 1

  validation {
    condition     = var.user_node_min_count >= 1 && var.user_node_min_count <= 50
    error_message = "The user_node_min_count must be from 1 to 50."
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

variable "host_encryption_enabled" {
  type        = bool
  description = "Encrypt the nodes' temp disks and caches at the host; needs the subscription feature Microsoft.Compute/EncryptionAtHost registered."
  default     = true
}

variable "vnet_cidr" {
  type        = string
  description = "Address range of the virtual network (a /16): nodes get x.x.0.0/23, and x.x.2.0/24 is left for a delegated database subnet. Pods use the overlay range."
  default     = "10.1.0.0/16"

  validation {
    condition     = can(cidrhost(var.vnet_cidr, 0)) && endswith(var.vnet_cidr, "/16")
    error_message = "The vnet_cidr must be an IPv4 /16 range such as 10.1.0.0/16."
  }
}

variable "api_allowed_cidrs" {
  type        = list(string)
  description = "Address ranges allowed to reach the Kubernetes API and to manage Key Vault secrets (your workstation or CI egress)."

  validation {
    condition     = length(var.api_allowed_cidrs) > 0 && alltrue([for cidr in var.api_allowed_cidrs : can(cidrhost(cidr, 0)) && cidr != "0.0.0.0/0"])
    error_message = "The api_allowed_cidrs must list at least one IPv4 range, and not 0.0.0.0/0."
  }
}

variable "key_vault_name" {
  type        = string
  description = "Name of the Key Vault that backs the app's Dapr secret store (globally unique, 3-24 characters)."

  validation {
    condition     = can(regex("^[a-zA-Z][-a-zA-Z0-9]{1,22}[a-zA-Z0-9]$", var.key_vault_name))
    error_message = "The key_vault_name must be 3-24 letters, digits and hyphens, starting with a letter."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Days the Log Analytics workspace keeps container insights and control-plane logs."
  default     = 30

  validation {
    condition     = var.log_retention_days >= 30 && var.log_retention_days <= 730
    error_message = "The log_retention_days must be from 30 to 730."
  }
}

variable "app_namespace" {
  type        = string
  description = "Namespace of the app; its ServiceAccount there is the one federated with the secret store identity."
  default     = "todo"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.app_namespace))
    error_message = "The app_namespace must be a Kubernetes namespace name (lower-case DNS label)."
  }
}

variable "app_service_account" {
  type        = string
  description = "Name of the app's ServiceAccount (the chart's serviceAccount.name), trusted by the workload identity."
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
  description = "Install the todo-workflows chart with values-aks.yaml once Dapr is up."
  default     = false
}

variable "app_values" {
  type        = any
  description = "Further chart values over values-aks.yaml and what this module sets (image tag, ingress host, …)."
  default     = {}

  validation {
    condition     = can(keys(var.app_values))
    error_message = "The app_values must be an object of chart values."
  }
}

variable "kubeconfig_path" {
  type        = string
  description = "Where to write the cluster's kubeconfig (Entra ID sign-in through kubelogin); null writes kubeconfig-<cluster_name> beside this module."
  default     = null
}

variable "tags" {
  type        = map(string)
  description = "Tags on every resource."
  default     = { project = "todo-workflows" }
}
