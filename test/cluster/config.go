package cluster

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The cluster's addresses, all inside its own network namespace: the node
// is a bridge with an address (the kernel has no dummy links), Pods hang off
// the CNI bridge.
const (
	nodeName            = "e2e-node"
	nodeIP              = "10.200.0.1"
	nodeCIDR            = "10.200.0.1/24"
	nodeGateway         = "10.200.0.254"
	podCIDR             = "10.244.0.0/24"
	serviceCIDR         = "10.96.0.0/16"
	kubernetesServiceIP = "10.96.0.1"
	// clusterDNSIP answers nothing (there is no DNS server to run), but
	// kubelet emits a Warning event for every Pod when it is not set.
	clusterDNSIP  = "10.96.0.10"
	apiserverPort = 6443
	etcdURL       = "http://127.0.0.1:2379"
	// sandboxImage is the pause image, imported from bin/images/e2e.
	sandboxImage = "docker.io/library/e2e-pause:e2e"
)

// writeKubeconfig writes a kubeconfig for server with the client
// certificate <pki>/<cert>.crt and .key.
func writeKubeconfig(path, server string, p *pki, cert string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: p.path("ca.crt")}
	cfg.AuthInfos["e2e"] = &clientcmdapi.AuthInfo{ClientCertificate: p.path(cert + ".crt"), ClientKey: p.path(cert + ".key")}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "e2e"}
	cfg.CurrentContext = "e2e"
	return clientcmd.WriteToFile(*cfg, path)
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

// containerdConfig is containerd 1.6's configuration (Debian 12's). Its
// root and state are the default paths, which the node's mount namespace
// puts under the state folder.
func containerdConfig(s *stateDir) string {
	return fmt.Sprintf(`version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  # Nothing can be pulled: the pause image is imported like every other.
  sandbox_image = %q
  # The VM's bounding set lacks CAP_SYS_RESOURCE: runc may not lower
  # oom_score_adj below its own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
`, s.path("containerd-opt"), sandboxImage, s.path("cni"))
}

// cniConfig is a bridge network for the Pods, with host-local addresses.
const cniConfig = `{
  "cniVersion": "0.4.0",
  "name": "e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "` + podCIDR + `"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`

func kubeletConfig(p *pki) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %q
authorization:
  mode: Webhook
tlsCertFile: %q
tlsPrivateKeyFile: %q
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
# The VM mounts cgroup v1 hierarchies; kubelet 1.37 refuses them unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
clusterDNS: [%q]
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
# The imported images cannot be pulled again: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  imagefs.available: 1%%
serializeImagePulls: false
`, p.path("ca.crt"), p.path("kubelet.crt"), p.path("kubelet.key"), clusterDNSIP)
}

func kubeProxyConfig(kubeconfig string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %q
mode: iptables
hostnameOverride: %s
clusterCIDR: %s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Zeros leave the VM-wide conntrack settings alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
`, kubeconfig, nodeName, podCIDR)
}
