output "cluster_id" {
  description = "Id of the GKE cluster."
  value       = google_container_cluster.this.id
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API (public endpoint, reachable from api_allowed_cidrs)."
  value       = "https://${google_container_cluster.this.endpoint}"
}

output "kubeconfig_path" {
  description = "Path of the written kubeconfig: export KUBECONFIG=<this> (needs gke-gcloud-auth-plugin)."
  value       = local_sensitive_file.kubeconfig.filename
}

output "network_name" {
  description = "Name of the VPC network (peer Cloud SQL or Memorystore into it)."
  value       = google_compute_network.this.name
}

output "secret_store_service_account" {
  description = "Google service account the app's Dapr secret store runs as (grant it more secrets if you keep them elsewhere)."
  value       = google_service_account.secrets.email
}

output "dapr_namespace" {
  description = "Namespace of the Dapr control plane."
  value       = module.dapr.dapr_namespace
}

output "app_release" {
  description = "Name and namespace of the app's Helm release, or null when install_app is false."
  value       = module.dapr.app_release
}
