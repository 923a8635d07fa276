# The Dapr control plane, then (optionally) the app's chart on top of it. Shared by the OKE,
# AKS and GKE root modules, which configure the helm provider for their cluster.

resource "helm_release" "dapr" {
  name             = "dapr"
  repository       = "https://dapr.github.io/helm-charts"
  chart            = "dapr"
  version          = var.dapr_version
  namespace        = var.dapr_namespace
  create_namespace = true
  atomic           = true
  wait             = true
  timeout          = var.helm_timeout_seconds

  # The Dapr chart's values, then the scheduler's memory limit when one is given.
  values = concat(
    [yamlencode({
      global = {
        # Sidecar-to-sidecar and sidecar-to-control-plane traffic is always mutually
        # authenticated; sentry issues the workload certificates.
        mtls      = { enabled = true }
        ha        = { enabled = var.ha_enabled }
        logAsJson = true
      }
    })],
    var.scheduler_memory_limit_mib == 0 ? [] : [yamlencode({
      dapr_scheduler = {
        resources = { limits = { memory = "${var.scheduler_memory_limit_mib}Mi" } }
        # The scheduler keeps a timer job per active series in memory; with GOMEMLIMIT its
        # collector tightens near the limit instead of letting the heap reach twice what is
        # live, and the kernel does not kill it first.
        extraEnvVars = { GOMEMLIMIT = "${floor(var.scheduler_memory_limit_mib * 0.9)}MiB" }
      }
    })],
  )
}

resource "helm_release" "app" {
  count = var.install_app ? 1 : 0

  name             = var.app_release_name
  chart            = var.app_chart_path
  namespace        = var.app_namespace
  create_namespace = true
  atomic           = true
  wait             = true
  timeout          = var.helm_timeout_seconds

  # The cloud's values file first, then what Terraform knows about this cluster, then the
  # caller's overrides: Helm merges the layers deeply, so an override keeps its siblings.
  values = concat([file(var.app_values_file)], [for layer in var.app_values : yamlencode(layer)])

  # The chart's Components, Configuration and Resiliency need Dapr's CRDs and injector.
  depends_on = [helm_release.dapr]
}
