# A small AKS cluster: a system pool for critical add-ons and an autoscaled user pool for
# Dapr and the app; Entra ID sign-in only; workload identity lets the app's Dapr secret store
# read one Key Vault without any stored credential.

locals {
  node_subnet_cidr = cidrsubnet(var.vnet_cidr, 7, 0) # x.x.0.0/23; x.x.2.0/24 stays free for a database
  pod_cidr         = "10.244.0.0/16"
  service_cidr     = "10.2.0.0/16"
  kubeconfig_path  = coalesce(var.kubeconfig_path, "${path.root}/kubeconfig-${var.cluster_name}")
  # What the federated credential trusts: the app's ServiceAccount in its namespace.
  workload_subject = "system:serviceaccount:${var.app_namespace}:${var.app_service_account}"
}

data "azurerm_client_config" "current" {}

resource "azurerm_resource_group" "this" {
  name     = "${var.cluster_name}-rg"
  location = var.location
  tags     = var.tags
}

resource "azurerm_virtual_network" "this" {
  name                = "${var.cluster_name}-vnet"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  address_space       = [var.vnet_cidr]
  tags                = var.tags
}

resource "azurerm_subnet" "nodes" {
  name                 = "nodes"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [local.node_subnet_cidr]
  # Key Vault admits the nodes (and so the pods, SNATed behind them) through this endpoint.
  service_endpoints = ["Microsoft.KeyVault"]
}

# AKS adds its own rules for load balancer traffic; nothing else is let in from outside.
resource "azurerm_network_security_group" "nodes" {
  name                = "${var.cluster_name}-nodes"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = var.tags
}

resource "azurerm_subnet_network_security_group_association" "nodes" {
  subnet_id                 = azurerm_subnet.nodes.id
  network_security_group_id = azurerm_network_security_group.nodes.id
}

resource "azurerm_log_analytics_workspace" "this" {
  name                = "${var.cluster_name}-logs"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = var.tags
}

resource "azurerm_kubernetes_cluster" "this" {
  #checkov:skip=CKV_AZURE_6:Authorized IP ranges are set below from api_allowed_cidrs, a required variable whose validation refuses an empty list and 0.0.0.0/0; checkov cannot resolve a variable without a default.
  #checkov:skip=CKV_AZURE_115:The API stays public so Terraform and operators can reach it without a VPN; api_server_access_profile limits it to api_allowed_cidrs and sign-in is Entra ID only.
  #checkov:skip=CKV_AZURE_117:OS disks are ephemeral and data disks use platform-managed keys; a customer-managed disk encryption set (premium Key Vault key, rotation) is not worth it at this size.
  #checkov:skip=CKV_AZURE_170:The Free tier is the point of a small cluster; set sku_tier = "Standard" for the uptime SLA.
  #checkov:skip=CKV_AZURE_172:Secrets reach the app through Dapr's Key Vault secret store with workload identity; the Secrets Store CSI driver add-on is not installed, so there is nothing to rotate.
  name                      = var.cluster_name
  location                  = azurerm_resource_group.this.location
  resource_group_name       = azurerm_resource_group.this.name
  dns_prefix                = var.cluster_name
  kubernetes_version        = var.kubernetes_version
  sku_tier                  = var.sku_tier
  automatic_upgrade_channel = "patch"
  node_os_upgrade_channel   = "NodeImage"
  oidc_issuer_enabled       = true
  workload_identity_enabled = true
  local_account_disabled    = true
  azure_policy_enabled      = true
  image_cleaner_enabled     = true
  # Hours between scans for unused images on the nodes.
  image_cleaner_interval_hours = 48
  tags                         = var.tags

  default_node_pool {
    name                         = "system"
    vm_size                      = var.system_node_vm_size
    node_count                   = var.system_node_count
    vnet_subnet_id               = azurerm_subnet.nodes.id
    only_critical_addons_enabled = true
    host_encryption_enabled      = var.host_encryption_enabled
    max_pods                     = 50
    os_disk_type                 = "Ephemeral"
    os_disk_size_gb              = 64
    temporary_name_for_rotation  = "systemtmp"
    tags                         = var.tags

    upgrade_settings {
      max_surge = "10%"
    }
  }

  identity {
    type = "SystemAssigned"
  }

  azure_active_directory_role_based_access_control {
    tenant_id          = data.azurerm_client_config.current.tenant_id
    azure_rbac_enabled = true
  }

  api_server_access_profile {
    authorized_ip_ranges = var.api_allowed_cidrs
  }

  network_profile {
    network_plugin      = "azure"
    network_plugin_mode = "overlay"
    network_data_plane  = "cilium"
    # The chart ships NetworkPolicies; Cilium enforces them.
    network_policy    = "cilium"
    pod_cidr          = local.pod_cidr
    service_cidr      = local.service_cidr
    dns_service_ip    = cidrhost(local.service_cidr, 10)
    load_balancer_sku = "standard"
  }

  oms_agent {
    log_analytics_workspace_id      = azurerm_log_analytics_workspace.this.id
    msi_auth_for_monitoring_enabled = true
  }

  lifecycle {
    precondition {
      condition     = var.user_node_max_count >= var.user_node_min_count
      error_message = "The user_node_max_count must be at least user_node_min_count."
    }
  }
}

resource "azurerm_kubernetes_cluster_node_pool" "user" {
  name                    = "user"
  kubernetes_cluster_id   = azurerm_kubernetes_cluster.this.id
  mode                    = "User"
  vm_size                 = var.user_node_vm_size
  vnet_subnet_id          = azurerm_subnet.nodes.id
  auto_scaling_enabled    = true
  min_count               = var.user_node_min_count
  max_count               = var.user_node_max_count
  host_encryption_enabled = var.host_encryption_enabled
  max_pods                = 50
  os_disk_type            = "Ephemeral"
  os_disk_size_gb         = 64
  node_labels             = { "todo-workflows/pool" = "user" }
  tags                    = var.tags

  upgrade_settings {
    max_surge = "10%"
  }
}

# Whoever runs Terraform administers the cluster (there are no local accounts).
resource "azurerm_role_assignment" "cluster_admin" {
  scope                = azurerm_kubernetes_cluster.this.id
  role_definition_name = "Azure Kubernetes Service RBAC Cluster Admin"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_key_vault" "secrets" {
  #checkov:skip=CKV2_AZURE_32:network_acls deny all but the nodes' subnet (service endpoint) and api_allowed_cidrs; a private endpoint would add a private DNS zone for no gain at this size.
  name                       = var.key_vault_name
  location                   = azurerm_resource_group.this.location
  resource_group_name        = azurerm_resource_group.this.name
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  sku_name                   = "standard"
  enable_rbac_authorization  = true
  purge_protection_enabled   = true
  soft_delete_retention_days = 90
  tags                       = var.tags

  network_acls {
    default_action             = "Deny"
    bypass                     = "AzureServices"
    ip_rules                   = var.api_allowed_cidrs
    virtual_network_subnet_ids = [azurerm_subnet.nodes.id]
  }
}

# Whoever runs Terraform may write the app's secrets into the vault.
resource "azurerm_role_assignment" "secrets_officer" {
  scope                = azurerm_key_vault.secrets.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_user_assigned_identity" "secrets" {
  name                = "${var.cluster_name}-secrets"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = var.tags
}

resource "azurerm_role_assignment" "secrets_reader" {
  scope                = azurerm_key_vault.secrets.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.secrets.principal_id
}

resource "azurerm_federated_identity_credential" "app" {
  name                = "${var.cluster_name}-app"
  resource_group_name = azurerm_resource_group.this.name
  parent_id           = azurerm_user_assigned_identity.secrets.id
  audience            = ["api://AzureADTokenExchange"]
  issuer              = azurerm_kubernetes_cluster.this.oidc_issuer_url
  subject             = local.workload_subject
}

resource "local_sensitive_file" "kubeconfig" {
  filename        = local.kubeconfig_path
  content         = azurerm_kubernetes_cluster.this.kube_config_raw
  file_permission = "0600"
}

module "dapr" {
  source = "../modules/dapr"

  ha_enabled                 = var.dapr_ha_enabled
  scheduler_memory_limit_mib = var.dapr_scheduler_memory_limit_mib
  install_app                = var.install_app
  app_namespace              = var.app_namespace
  app_chart_path             = "${path.module}/../../charts/todo-workflows"
  app_values_file            = "${path.module}/../../charts/todo-workflows/values-aks.yaml"
  app_values = [
    {
      serviceAccount = {
        name        = var.app_service_account
        annotations = { "azure.workload.identity/client-id" = azurerm_user_assigned_identity.secrets.client_id }
      }
      podLabels = { "azure.workload.identity/use" = "true" }
      dapr = {
        secretStore = {
          type  = "azure"
          azure = { vaultName = azurerm_key_vault.secrets.name, clientId = azurerm_user_assigned_identity.secrets.client_id }
        }
      }
    },
    var.app_values,
  ]

  # Helm needs the user pool (the system pool refuses non-critical pods) and the admin role.
  depends_on = [azurerm_kubernetes_cluster_node_pool.user, azurerm_role_assignment.cluster_admin]
}
