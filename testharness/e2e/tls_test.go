package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/sim"
)

// writeTestPKI writes a throwaway CA and a server certificate for 127.0.0.1 signed by it.
func writeTestPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lanebridge test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "lanebridge hub"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "hub.pem"), filepath.Join(dir, "hub-key.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return caFile, certFile, keyFile
}

// TestTLSBroker: the embedded broker serves TLS; an agent with ssl:// and the CA delivers every
// record; an agent that does not trust the CA never connects (and captures anyway).
func TestTLSBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	caFile, certFile, keyFile := writeTestPKI(t, dir)
	hubCfg := writeHubConfig(t, dir, "hub.yaml", "mqtt:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+"\n")
	h := startHub(t, dir, "--config", hubCfg)
	const store = "S060"
	journal := filepath.Join(dir, "T1.jsonl")
	cfgPath := agentConfig(t, dir, store, enroll(t, dir, store, "ssl://"+h.MQTT, "--config", hubCfg), map[string]string{"T1": journal})
	b, _ := os.ReadFile(cfgPath)
	trusted := strings.Replace(string(b), "  ack_timeout: 3s\n", "  ack_timeout: 3s\n  tls:\n    ca_file: "+caFile+"\n", 1)
	if trusted == string(b) {
		t.Fatal("could not add tls.ca_file to the agent config")
	}

	// Without the CA the agent cannot verify the hub: it must not deliver, but it captures.
	os.WriteFile(cfgPath, b, 0o600)
	simP := runSim(t, dir, journal, "T1", 300, 0, 60)
	<-simP.Done
	ag := startAgent(t, dir, store, cfgPath)
	listen := agentListenT(t, cfgPath)
	eventually(t, 30*time.Second, "capture without a trusted hub", func() error {
		st, err := agentStatus(listen)
		if err != nil {
			return err
		}
		if st.LastSeq != 300 {
			return fmt.Errorf("captured %d", st.LastSeq)
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	if si, _ := h.Store(store); si.Records != 0 {
		t.Fatalf("an agent that does not trust the hub's certificate delivered %d records", si.Records)
	}
	ag.Stop(t)

	os.WriteFile(cfgPath, []byte(trusted), 0o600)
	ag = startAgent(t, dir, store, cfgPath)
	h.WaitRecords(t, store, 300, 60*time.Second)
	verify(t, h, store, map[string]sim.Totals{"T1": readTotals(t, journal)})
	ag.Stop(t)
	checkLogs(t, dir)
}
