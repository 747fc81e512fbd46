// Package tlstest helps test Cutover's TLS to Temporal: throwaway certificates
// (a CA, a server certificate for the loopback addresses and a client
// certificate, written as PEM files the TEMPORAL_TLS_* variables can name), a
// TLS-terminating proxy to put in front of a plaintext dev server, which cannot
// require client certificates itself, and an environment cleared of the
// developer's Temporal settings.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// PKI is a CA and the certificates it issued, as files in a test's temporary
// directory and as what a Go TLS server needs.
type PKI struct {
	// CAFile, ServerCertFile, ServerKeyFile, ClientCertFile and ClientKeyFile
	// are PEM files.
	CAFile, ServerCertFile, ServerKeyFile, ClientCertFile, ClientKeyFile string
	// CAPool holds the CA, to verify either side with.
	CAPool *x509.CertPool
	// Server is the server's certificate, for 127.0.0.1, ::1 and localhost.
	Server tls.Certificate
	// Client is the client's certificate.
	Client tls.Certificate
}

// New makes a CA and a server and a client certificate it signed.
func New(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	p := &PKI{CAPool: x509.NewCertPool()}
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cutover test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("create CA: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p.CAPool.AddCert(ca)
	p.CAFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)

	issue := func(serial int64, name string, usage x509.ExtKeyUsage, hosts bool) (certFile, keyFile string, cert tls.Certificate) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if hosts {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("create %s certificate: %v", name, err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certFile = writePEM(t, dir, name+".pem", "CERTIFICATE", der)
		keyFile = writePEM(t, dir, name+"-key.pem", "PRIVATE KEY", keyDER)
		cert, err = tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return certFile, keyFile, cert
	}
	p.ServerCertFile, p.ServerKeyFile, p.Server = issue(2, "server", x509.ExtKeyUsageServerAuth, true)
	p.ClientCertFile, p.ClientKeyFile, p.Client = issue(3, "client", x509.ExtKeyUsageClientAuth, false)
	return p
}

// CleanEnv empties every TEMPORAL_* variable (empty is unset to Cutover) and
// points TEMPORAL_CONFIG_FILE at an empty file for the rest of the test, so that
// neither the developer's environment nor their
// ~/.config/temporalio/temporal.toml leaks into it.
func CleanEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "TEMPORAL_") {
			t.Setenv(name, "")
		}
	}
	empty := filepath.Join(t.TempDir(), "empty.toml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEMPORAL_CONFIG_FILE", empty)
}

// ServerConfig is a TLS server configuration that requires a client
// certificate signed by the CA, as an mTLS Temporal frontend does.
func (p *PKI) ServerConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{p.Server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.CAPool,
		MinVersion:   tls.VersionTLS12,
		// gRPC clients refuse a server that does not select HTTP/2 by ALPN.
		NextProtos: []string{"h2"},
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return key
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Proxy listens on a loopback port with TLS config cfg and forwards the bytes
// of every connection whose handshake succeeds to backend, in the clear. It
// returns the port's address; the test's cleanup closes the listener and every
// connection.
func Proxy(t testing.TB, cfg *tls.Config, backend string) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("TLS proxy: %v", err)
	}
	var (
		mu     sync.Mutex
		conns  = map[net.Conn]bool{}
		closed bool
		wg     sync.WaitGroup
	)
	// track keeps c to close at cleanup (false once cleanup started), and
	// the func it returns forgets and closes it.
	track := func(c net.Conn) (func(), bool) {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			c.Close()
			return nil, false
		}
		conns[c] = true
		return func() {
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
		}, true
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			closeC, ok := track(c)
			if !ok {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer closeC()
				// The handshake happens here rather than on the first read, so
				// that a refused client is dropped before the backend is dialed.
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				closeB, ok := track(b)
				if !ok {
					return
				}
				defer closeB()
				done := make(chan struct{}, 2)
				pipe := func(dst, src net.Conn) {
					_, _ = io.Copy(dst, src)
					done <- struct{}{}
				}
				go pipe(b, c)
				go pipe(c, b)
				// Either side hanging up ends both.
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}
