// Command kube-harness runs one real Kubernetes API server (k8s.io/kubernetes/cmd/kube-apiserver)
// with an embedded etcd in a single process, listening only on 127.0.0.1, for globalingress's
// integration tests and demo.
//
// It writes a kubeconfig (bearer token of a user in system:masters) and an env file into -dir,
// prints one line "READY <kubeconfig> <url>" on stdout, and runs until its lifeline ends:
// with -lifeline=stdin (the default) when its standard input closes, so it dies with the test
// process that spawned it; with -lifeline=signal only on SIGTERM/SIGINT (for scripts that start it
// in the background and stop it by PID).
//
// Every start is a fresh cluster unless -keep-data is given: then a -dir holding an earlier run's
// state (ports.json, certificates, service-account key, tokens.csv, etcd data) is started again with
// all of it, on the same ports, so kubeconfigs written before stay valid and the objects are still
// there; the first start in an empty -dir persists all of it. Tests use it to restart a cluster.
//
// No controllers run: no garbage collection, no namespace finalization, no pods from workloads.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

// stderr is the process's standard error as it was at start: run points os.Stderr at /dev/null
// to silence klog, and errors must still be seen.
var stderr = os.Stderr

func main() {
	name := flag.String("name", "hub", "cluster name, used in the kubeconfig")
	dir := flag.String("dir", "", "state directory (kubeconfig, certificates, etcd data); required")
	port := flag.Int("port", 0, "secure port of the API server on 127.0.0.1 (0 picks a free one)")
	lifeline := flag.String("lifeline", "stdin", "what keeps the server alive: stdin (exit when it closes) or signal (exit on SIGTERM/SIGINT only)")
	readyTimeout := flag.Duration("ready-timeout", 180*time.Second, "how long to wait for /readyz")
	verbose := flag.Bool("v", false, "show the API server's own logs")
	keepData := flag.Bool("keep-data", false, "reuse -dir's state from an earlier run (etcd data, certificates, keys, tokens, ports) and persist it for the next; shutdown closes etcd cleanly")
	flag.Parse()

	if err := run(*name, *dir, *port, *lifeline, *readyTimeout, *verbose, *keepData); err != nil {
		fmt.Fprintf(stderr, "kube-harness %s: %v\n", *name, err)
		os.Exit(1)
	}
}

func run(name, dir string, port int, lifeline string, readyTimeout time.Duration, verbose, keepData bool) error {
	if dir == "" {
		return fmt.Errorf("-dir is required")
	}
	if lifeline != "stdin" && lifeline != "signal" {
		return fmt.Errorf("-lifeline must be stdin or signal, not %q", lifeline)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	etcdDir := filepath.Join(dir, "etcd")
	tokenFile := filepath.Join(dir, "tokens.csv")
	pki := pkiPaths(dir)

	var prev *savedState
	if keepData {
		prev, err = loadState(dir, pki, tokenFile)
		if err != nil {
			// Half a state (a crash during a first start, files removed by hand) cannot be
			// trusted: start fresh, which rewrites all of it.
			fmt.Fprintf(stderr, "kube-harness %s: -keep-data: %v; starting a fresh cluster\n", name, err)
			prev = nil
		}
	}

	var ports savedPorts
	var adminToken, userToken string
	if prev != nil {
		ports = prev.ports
		if port != 0 {
			ports.Secure = port
		}
		adminToken, userToken = prev.adminToken, prev.userToken
	} else {
		// A previous run's data would resurrect its objects: a fresh start is a fresh cluster.
		if err := os.RemoveAll(etcdDir); err != nil {
			return err
		}
		free, err := freePorts(3)
		if err != nil {
			return err
		}
		ports = savedPorts{EtcdClient: free[0], EtcdPeer: free[1], Secure: free[2]}
		if port != 0 {
			ports.Secure = port
		}
		if err := writePKI(pki); err != nil {
			return fmt.Errorf("writing certificates: %w", err)
		}
		if adminToken, err = randomToken(); err != nil {
			return err
		}
		if userToken, err = randomToken(); err != nil {
			return err
		}
		tokens := fmt.Sprintf("%s,admin,admin-uid,\"system:masters\"\n%s,developer,developer-uid\n", adminToken, userToken)
		if err := os.WriteFile(tokenFile, []byte(tokens), 0o600); err != nil {
			return err
		}
	}
	if keepData {
		// Written last: its presence says every other file of the state is complete.
		if err := savePorts(dir, ports); err != nil {
			return err
		}
	} else if err := os.Remove(filepath.Join(dir, "ports.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		// An earlier -keep-data run's ports no longer describe this dir's (fresh) state.
		return err
	}
	port = ports.Secure

	etcd, err := startEtcd(etcdDir, ports.EtcdClient, ports.EtcdPeer, verbose)
	if err != nil {
		return fmt.Errorf("starting etcd: %w", err)
	}
	stop := func() {
		closed := make(chan struct{})
		go func() { etcd.Close(); close(closed) }()
		if keepData {
			// The data outlives this process: let etcd finish its WAL and backend, or the next
			// start may find them torn. Close waits for the API server's connections to drain
			// (a few seconds); the bound only guards against a hang.
			select {
			case <-closed:
			case <-time.After(20 * time.Second):
				fmt.Fprintf(stderr, "kube-harness %s: etcd did not close within 20s\n", name)
			}
			return
		}
		// Close waits for the API server's connections to drain, which takes seconds; the data is
		// thrown away anyway, so give it a moment and then go.
		select {
		case <-closed:
		case <-time.After(2 * time.Second):
		}
		_ = os.RemoveAll(etcdDir)
	}

	if !verbose {
		// klog writes to stderr; keep the harness quiet unless asked.
		os.Args = os.Args[:1]
	}
	cmd := app.NewAPIServerCommand()
	args := []string{
		"--etcd-servers=" + etcd.Clients[0].Addr().String(),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + pki.serverCert,
		"--tls-private-key-file=" + pki.serverKey,
		"--client-ca-file=" + pki.caCert,
		"--service-account-issuer=https://127.0.0.1:" + strconv.Itoa(port),
		"--service-account-key-file=" + pki.saKey,
		"--service-account-signing-key-file=" + pki.saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		"--token-auth-file=" + tokenFile,
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
	}
	if !verbose {
		args = append(args, "--v=0", "--logging-format=text")
	}
	cmd.SetArgs(args)
	if !verbose {
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err == nil {
			// The API server logs through klog to stderr at every request; redirect it.
			os.Stderr = devnull
		}
	}
	serverErr := make(chan error, 1)
	go func() { serverErr <- cmd.Execute() }()

	endpoint := "https://127.0.0.1:" + strconv.Itoa(port)
	caPEM, err := os.ReadFile(pki.caCert)
	if err != nil {
		stop()
		return err
	}
	if err := waitReady(endpoint, caPEM, adminToken, readyTimeout, serverErr); err != nil {
		stop()
		return err
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeFileAtomic(kubeconfig, []byte(kubeconfigYAML(name, endpoint, caPEM, adminToken)), 0o600); err != nil {
		stop()
		return err
	}
	userKubeconfig := filepath.Join(dir, "kubeconfig-unprivileged")
	if err := writeFileAtomic(userKubeconfig, []byte(kubeconfigYAML(name, endpoint, caPEM, userToken)), 0o600); err != nil {
		stop()
		return err
	}
	fmt.Printf("READY %s %s\n", kubeconfig, endpoint)

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	stdinClosed := make(chan struct{})
	if lifeline == "stdin" {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(stdinClosed)
		}()
	}
	select {
	case <-signals:
	case <-stdinClosed:
		if keepData {
			// The API server stops on SIGTERM (its own handler; one signal only: a second one
			// makes it exit at once), as below.
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		}
	case err := <-serverErr:
		stop()
		select {
		case <-signals:
			// The API server handles SIGTERM too and may have returned first: a normal stop.
			return nil
		default:
		}
		return fmt.Errorf("API server stopped: %v", err)
	}
	if keepData {
		// Let the API server close its etcd connections first: etcd's Close otherwise waits for
		// its watch streams until the request timeout (7 s). Bounded: the data matters, not it.
		select {
		case <-serverErr:
		case <-time.After(5 * time.Second):
		}
	}
	stop()
	return nil
}

func startEtcd(dir string, clientPort, peerPort int, verbose bool) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "harness"
	cfg.Dir = dir
	cfg.UnsafeNoFsync = true
	clientURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(clientPort)}
	peerURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(peerPort)}
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	if verbose {
		cfg.LogLevel = "info"
	} else {
		cfg.LogLevel = "error"
	}
	etcd, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-etcd.Server.ReadyNotify():
		return etcd, nil
	case err := <-etcd.Err():
		etcd.Close()
		return nil, err
	case <-time.After(60 * time.Second):
		etcd.Close()
		return nil, fmt.Errorf("etcd not ready after 60s")
	}
}

func waitReady(endpoint string, caPEM []byte, token string, timeout time.Duration, serverErr <-chan error) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	lastErr := "no answer yet"
	// /readyz first, then the default namespace: the latter is created by a post-start hook that
	// can finish after /readyz turns green, and every test needs it.
	for _, path := range []string{"/readyz", "/api/v1/namespaces/default"} {
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				lastErr = fmt.Sprintf("%s answered %d", path, resp.StatusCode)
			} else {
				lastErr = err.Error()
			}
			select {
			case err := <-serverErr:
				return fmt.Errorf("API server exited before it was ready: %v", err)
			case <-ctx.Done():
				return fmt.Errorf("API server not ready after %s: %s", timeout, lastErr)
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	return nil
}

type pkiFiles struct{ caCert, serverCert, serverKey, saKey string }

func pkiPaths(dir string) pkiFiles {
	return pkiFiles{
		caCert:     filepath.Join(dir, "ca.crt"),
		serverCert: filepath.Join(dir, "apiserver.crt"),
		serverKey:  filepath.Join(dir, "apiserver.key"),
		saKey:      filepath.Join(dir, "sa.key"),
	}
}

// savedPorts is ports.json: the addresses clients of a -keep-data cluster reconnect to.
type savedPorts struct {
	Secure     int `json:"secure"`
	EtcdClient int `json:"etcdClient"`
	EtcdPeer   int `json:"etcdPeer"`
}

type savedState struct {
	ports                 savedPorts
	adminToken, userToken string
}

func savePorts(dir string, ports savedPorts) error {
	data, err := json.Marshal(ports)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "ports.json"), append(data, '\n'), 0o600)
}

// loadState reads an earlier -keep-data run's state from dir: (nil, nil) when there is none
// (no ports.json), an error when it is incomplete.
func loadState(dir string, pki pkiFiles, tokenFile string) (*savedState, error) {
	data, err := os.ReadFile(filepath.Join(dir, "ports.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var state savedState
	if err := json.Unmarshal(data, &state.ports); err != nil {
		return nil, fmt.Errorf("ports.json: %w", err)
	}
	if state.ports.Secure == 0 || state.ports.EtcdClient == 0 || state.ports.EtcdPeer == 0 {
		return nil, fmt.Errorf("ports.json lacks a port: %s", strings.TrimSpace(string(data)))
	}
	for _, f := range []string{pki.caCert, pki.serverCert, pki.serverKey, pki.saKey} {
		if _, err := os.Stat(f); err != nil {
			return nil, err
		}
	}
	tokens, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(tokens), "\n") {
		fields := strings.Split(line, ",")
		if len(fields) < 2 {
			continue
		}
		switch fields[1] {
		case "admin":
			state.adminToken = fields[0]
		case "developer":
			state.userToken = fields[0]
		}
	}
	if state.adminToken == "" || state.userToken == "" {
		return nil, fmt.Errorf("%s lacks the admin or developer token", tokenFile)
	}
	return &state, nil
}

func writePKI(files pkiFiles) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kube-harness-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	serverKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serverTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, serverTemplate, caCert, &serverKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := writePEM(files.caCert, "CERTIFICATE", caDER); err != nil {
		return err
	}
	if err := writePEM(files.serverCert, "CERTIFICATE", serverDER); err != nil {
		return err
	}
	if err := writeECKey(files.serverKey, serverKey); err != nil {
		return err
	}
	if err := writeECKey(files.saKey, saKey); err != nil {
		return err
	}
	return nil
}

func writeECKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "EC PRIVATE KEY", der)
}

func writePEM(path, kind string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func kubeconfigYAML(name, endpoint string, caPEM []byte, token string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority-data: %[3]s
users:
- name: %[1]s-user
  user:
    token: %[4]s
contexts:
- name: %[1]s
  context:
    cluster: %[1]s
    user: %[1]s-user
current-context: %[1]s
`, name, endpoint, base64.StdEncoding.EncodeToString(caPEM), token)
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func freePorts(n int) ([]int, error) {
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
