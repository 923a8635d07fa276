output "dapr_namespace" {
  description = "Namespace of the Dapr control plane."
  value       = helm_release.dapr.namespace
}

output "dapr_version" {
  description = "Version of the Dapr chart installed."
  value       = helm_release.dapr.version
}

output "app_release" {
  description = "Name and namespace of the app's Helm release, or null when install_app is false."
  value = var.install_app ? {
    name      = helm_release.app[0].name
    namespace = helm_release.app[0].namespace
  } : null
}
