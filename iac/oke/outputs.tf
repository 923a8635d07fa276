output "cluster_id" {
  description = "OCID of the OKE cluster."
  value       = oci_containerengine_cluster.this.id
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API (public endpoint, reachable from api_allowed_cidrs)."
  value       = local.api_server
}

output "kubeconfig_path" {
  description = "Path of the written kubeconfig: export KUBECONFIG=<this> (it runs `oci ce cluster generate-token`)."
  value       = local_sensitive_file.kubeconfig.filename
}

output "vcn_id" {
  description = "OCID of the VCN."
  value       = oci_core_vcn.this.id
}

output "node_subnet_cidr" {
  description = "Address range of the worker nodes' private subnet."
  value       = local.node_subnet_cidr
}

output "node_pool_id" {
  description = "OCID of the A1 node pool."
  value       = oci_containerengine_node_pool.this.id
}

output "dapr_namespace" {
  description = "Namespace of the Dapr control plane."
  value       = module.dapr.dapr_namespace
}

output "app_release" {
  description = "Name and namespace of the app's Helm release, or null when install_app is false."
  value       = module.dapr.app_release
}
