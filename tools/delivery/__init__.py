"""The delivery checks and the Minikube deploy, as the commands the Taskfile runs: the chart's
(`chart:check`), the Terraform's (`iac:check`), the workflows' (`ci:lint`) and `deploy:minikube`."""
