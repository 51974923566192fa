#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine: the real servers the integration
# tests start (each test starts its own instance on loopback, in a temp dir) and the npm dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PACKAGES=(
  openssh-server openssh-client   # sshd for the SSH transport tests
  zookeeper libslf4j-java         # ZooKeeper 3.8 (+ slf4j-simple for its log)
  prometheus                      # Prometheus 2.x
  nginx haproxy socat             # web layer
  etcd-server etcd-client         # etcd v3
  rabbitmq-server                 # RabbitMQ with the management plugin
  ansible-core                    # the benchmark's baseline
  ansible-mitogen                 # the benchmark's third column (strategy: mitogen_linear)
  zsh                             # a test host whose login shell is zsh (dash is Debian's /bin/sh)
  dnsmasq-base                    # a DNS server for the CanonicalizeHostname tests (ssh -G and graywave in a namespace)
  netcat-openbsd curl time procps sudo tar
  strace                          # sees every process a test host starts (deploy through SFTP: only sha256sum)
  openssl                         # self-signed certificates made by the TLS tests (tls: option)
  chromium                        # headless rendering check of graywave report --html
  tmux                            # the live view, Ctrl-C and prompts tested in a real terminal (test/cli/tty)
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
$SUDO mkdir -p /run/sshd && $SUDO chmod 0755 /run/sshd
npm ci
