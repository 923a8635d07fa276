variable "dapr_version" {
  type        = string
  description = "Version of the Dapr Helm chart (and so of the control plane); the app's SDK pins match 1.18.3."
  default     = "1.18.3"

  validation {
    condition     = can(regex("^\\d+\\.\\d+\\.\\d+$", var.dapr_version))
    error_message = "The dapr_version must be a release version such as 1.18.3."
  }
}

variable "dapr_namespace" {
  type        = string
  description = "Namespace of the Dapr control plane (operator, sentry, placement, scheduler, injector)."
  default     = "dapr-system"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.dapr_namespace))
    error_message = "The dapr_namespace must be a Kubernetes namespace name (lower-case DNS label)."
  }
}

variable "ha_enabled" {
  type        = bool
  description = "Run the Dapr control plane highly available (3 replicas of each service) instead of one replica each."
  default     = false
}

variable "scheduler_memory_limit_mib" {
  type        = number
  description = "Memory limit of each Dapr scheduler replica in MiB, with GOMEMLIMIT at 90 % of it; 0 keeps the Dapr chart's default (no limit). The scheduler holds one timer job per active series: 208 MiB at 10,000 series and 882-945 MiB at 100,000, measured without a limit (docs/performance.md)."
  default     = 0

  validation {
    condition     = var.scheduler_memory_limit_mib == 0 || (var.scheduler_memory_limit_mib >= 256 && var.scheduler_memory_limit_mib == floor(var.scheduler_memory_limit_mib))
    error_message = "The scheduler_memory_limit_mib must be 0 (no limit) or a whole number of MiB, at least 256."
  }
}

variable "helm_timeout_seconds" {
  type        = number
  description = "How long each Helm release may take to become ready before it is rolled back."
  default     = 900

  validation {
    condition     = var.helm_timeout_seconds >= 60 && var.helm_timeout_seconds <= 3600
    error_message = "The helm_timeout_seconds must be between 60 and 3600."
  }
}

variable "install_app" {
  type        = bool
  description = "Also install this app's chart (charts/todo-workflows) once Dapr is up."
  default     = false
}

variable "app_chart_path" {
  type        = string
  description = "Path of the todo-workflows chart directory (used when install_app is true)."
}

variable "app_values_file" {
  type        = string
  description = "The chart's values file for this cloud (values-oke.yaml, values-aks.yaml or values-gke.yaml), applied over the chart's defaults."

  validation {
    condition     = can(regex("values-[a-z]+\\.yaml$", var.app_values_file))
    error_message = "The app_values_file must name one of the chart's values-<cloud>.yaml files."
  }
}

variable "app_values" {
  type        = any
  description = "Value layers (a list of objects) applied in order over app_values_file, merged deeply by Helm: what this cloud's Terraform knows (identities, vault names), then the caller's overrides."
  default     = []

  validation {
    condition     = can([for layer in var.app_values : keys(layer)])
    error_message = "The app_values must be a list of objects (value layers)."
  }
}

variable "app_namespace" {
  type        = string
  description = "Namespace the app's release is installed into (created if missing)."
  default     = "todo"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.app_namespace))
    error_message = "The app_namespace must be a Kubernetes namespace name (lower-case DNS label)."
  }
}

variable "app_release_name" {
  type        = string
  description = "Helm release name of the app."
  default     = "todo-workflows"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$", var.app_release_name))
    error_message = "The app_release_name must be a lower-case DNS label of at most 53 characters (Helm's limit)."
  }
}
