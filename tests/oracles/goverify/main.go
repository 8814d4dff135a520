// Command goverify is the Go crypto/x509 oracle of tests/clients.rs: it verifies a chain the
// way Vault, OpenBao, Consul and Kubernetes do (x509.Certificate.Verify) and prints "ok" or
// the error. Standard library only.
//
//	goverify -presented chain.pem -roots roots.pem [-name host] [-purpose server|client] [-at unix]
//
// presented: the leaf first, then what the peer sends (the intermediates pool); roots: the
// trust store (every certificate in it is an anchor). Exit 0 when it verifies, 1 when it does
// not, 2 on a usage error.
package main

import (
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	presented := flag.String("presented", "", "PEM file: leaf first, then the presented certificates")
	roots := flag.String("roots", "", "PEM file: the trust store")
	name := flag.String("name", "", "DNS name or IP the leaf must be valid for")
	purpose := flag.String("purpose", "server", "server or client")
	at := flag.Int64("at", 0, "verification time, unix seconds (0: now)")
	flag.Parse()
	err := run(*presented, *roots, *name, *purpose, *at)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("ok")
}

func run(presentedFile, rootsFile, name, purpose string, at int64) error {
	chain, err := certs(presentedFile)
	if err != nil {
		return err
	}
	if len(chain) == 0 {
		return fmt.Errorf("no certificate in %s", presentedFile)
	}
	store, err := certs(rootsFile)
	if err != nil {
		return err
	}
	opts := x509.VerifyOptions{
		DNSName:       name,
		Roots:         x509.NewCertPool(),
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if purpose == "client" {
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if at != 0 {
		opts.CurrentTime = time.Unix(at, 0)
	}
	for _, c := range store {
		opts.Roots.AddCert(c)
	}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err = chain[0].Verify(opts)
	return err
}

// certs parses every CERTIFICATE block of a PEM file; a block that does not parse is an error
// (Go rejects such certificates before any path building).
func certs(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		out = append(out, c)
	}
}
