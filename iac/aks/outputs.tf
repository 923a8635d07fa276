output "cluster_id" {
  description = "Resource id of the AKS cluster."
  value       = azurerm_kubernetes_cluster.this.id
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API (reachable from api_allowed_cidrs)."
  value       = "https://${azurerm_kubernetes_cluster.this.fqdn}:443"
}

output "kubeconfig_path" {
  description = "Path of the written kubeconfig; run `kubelogin convert-kubeconfig -l azurecli --kubeconfig <this>` once to reuse the Azure CLI login."
  value       = local_sensitive_file.kubeconfig.filename
}

output "resource_group_name" {
  description = "Resource group holding the cluster, network, vault and identity."
  value       = azurerm_resource_group.this.name
}

output "oidc_issuer_url" {
  description = "OIDC issuer of the cluster's ServiceAccount tokens (trusted by the federated credential)."
  value       = azurerm_kubernetes_cluster.this.oidc_issuer_url
}

output "key_vault_name" {
  description = "Key Vault the app's Dapr secret store reads (put the app's secrets there)."
  value       = azurerm_key_vault.secrets.name
}

output "workload_identity_client_id" {
  description = "Client id of the managed identity federated with the app's ServiceAccount (the chart's dapr.secretStore.azure.clientId)."
  value       = azurerm_user_assigned_identity.secrets.client_id
}

output "dapr_namespace" {
  description = "Namespace of the Dapr control plane."
  value       = module.dapr.dapr_namespace
}

output "app_release" {
  description = "Name and namespace of the app's Helm release, or null when install_app is false."
  value       = module.dapr.app_release
}
