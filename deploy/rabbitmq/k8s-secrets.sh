#!/bin/sh
# Prints the two Kubernetes Secrets of StuffMart's AMQP users, with passwords generated
# once and kept under SECRETS_DIR (default ./amqp-secrets, git-ignored; keep it private):
#
#   bash deploy/rabbitmq/k8s-secrets.sh HOST [SECRETS_DIR] | kubectl apply -f -
#
#   stuffmart-amqp                   key ms-user … ms-router: that service's AMQP_URL
#                                    (amqp://ms-user:PASSWORD@HOST:5672/%2f); each
#                                    Deployment reads only its own key
#   stuffmart-rabbitmq-definitions   key definitions.json: users (with passwords),
#                                    permissions and topic permissions; key
#                                    20-stuffmart.conf: rabbitmq.conf (load_definitions).
#                                    dev/rabbitmq.yaml mounts both; a RabbitmqCluster
#                                    mounts the first by override (deploy/k8s/README.md)
#
# HOST: `rabbitmq` for the dev overlay, `stuffmart-rabbitmq.stuffmart.svc` for the cluster
# operator's service. Re-running prints the same passwords. Needs kubectl (client only).
set -eu

host="${1:?usage: k8s-secrets.sh HOST [SECRETS_DIR]}"
dir="${2:-./amqp-secrets}"
here="$(cd "$(dirname "$0")" && pwd)"

sh "$here/render-definitions.sh" "$here/definitions.json" "$dir" >&2
set --
for user in ms-user ms-stuff ms-order ms-payment ms-router; do
	set -- "$@" "--from-literal=${user}=amqp://${user}:$(cat "${dir}/${user}/password")@${host}:5672/%2f"
done
kubectl -n stuffmart create secret generic stuffmart-amqp "$@" --dry-run=client -o yaml
echo "---"
kubectl -n stuffmart create secret generic stuffmart-rabbitmq-definitions \
	--from-file=definitions.json="${dir}/rabbitmq/definitions.json" \
	--from-file=20-stuffmart.conf="$here/rabbitmq.conf" --dry-run=client -o yaml
