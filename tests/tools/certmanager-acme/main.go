// certmanager-acme drives cert-manager's own ACME client code (cert-manager v1.21.2, the module named in
// go.mod) through one issuance, the way cert-manager's ACME issuer and its controllers do, without Kubernetes:
// no controller runs here, the Issuer/Order/Challenge resources are plain local variables, and each step below
// calls the SAME cert-manager client methods, in the same order and with the same options, as the controller
// code it names:
//
//   - pkg/acme/accounts/client.go            NewClient: the ACME client (third_party/forked/acme.Client behind
//     the middleware.Logger and the instrumented HTTP client, the CA bundle of spec.acme.caBundle)
//   - pkg/issuer/acme/setup.go               RSA account key (pki.MinRSAKeySize), getEABKey (raw base64url),
//     registerAccount (Register with the EAB and AcceptTOS, GetReg on ErrAccountAlreadyExists),
//     ensureEmailUpToDate (UpdateReg when the contact differs)
//   - pkg/controller/certificates/keymanager + requestmanager: the key (pki.GeneratePrivateKeyForCertificate)
//     and the CSR (pki.GenerateCSR with the v1.21 default feature gates, pki.EncodeCSR) of a Certificate
//   - pkg/controller/certificaterequests/acme/acme.go buildOrder: the order's names come from the CSR
//   - pkg/controller/acmeorders/sync.go      createOrder (AuthorizeOrder; no options by default: WithOrderNotAfter
//     only with the Issuer's enableDurationFeature (-duration), no profile, ARI's replaces behind an alpha
//     gate), fetchMetadataForAuthorizations (GetAuthorization), ensureKeysForChallenges (util.go:
//     HTTP01ChallengeResponse / DNS01ChallengeRecord), getACMEOrder (GetOrder) until the order is ready,
//     finalizeOrder (CreateOrderCert(finalizeURL, csrDER, bundle=true), then updateOrderStatus: GetOrder)
//   - pkg/controller/acmechallenges/sync.go  syncChallengeStatus (GetAuthorization, the challenge picked by
//     URL), Present, the readiness self-check, acceptChallenge (Accept with a Challenge built from URL and
//     token, then WaitAuthorization under authorizationTimeout = 2 min)
//
// The http-01 key authorization is served by cert-manager's own solver code (pkg/issuer/acme/http/solver,
// HTTP01Solver: what the acmesolver pod runs) on -http01-port. For dns-01 the TXT record is written into
// pebble-challtestsrv's management API (-dns01-challtestsrv), standing in for a DNS provider/webhook, and the
// self-check is cert-manager's own (pkg/issuer/acme/dns/util: DNS01LookupFQDN, PreCheckDNS against
// -dns01-nameserver, as with --dns01-recursive-nameservers-only), without its fixed 60 s TTL wait.
//
// On success it writes the chain (PEM, leaf first, as the Order's status.certificate) and the private key
// (PKCS#1 for RSA, SEC 1 for ECDSA: cert-manager's default encoding) and exits 0; any failure exits 1 with the
// error on stderr.
package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/cert-manager/cert-manager/pkg/acme/accounts"
	acmecl "github.com/cert-manager/cert-manager/pkg/acme/client"
	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	dnsutil "github.com/cert-manager/cert-manager/pkg/issuer/acme/dns/util"
	"github.com/cert-manager/cert-manager/pkg/issuer/acme/http/solver"
	"github.com/cert-manager/cert-manager/pkg/metrics"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	acmeapi "github.com/cert-manager/cert-manager/third_party/forked/acme"
)

// cert-manager's authorizationTimeout (pkg/controller/acmechallenges/sync.go) and the order controller's
// RequeuePeriod (pkg/controller/acmeorders) while the server has not yet moved a pending order on.
const (
	authorizationTimeout = 2 * time.Minute
	orderRequeuePeriod   = time.Second // cert-manager waits 5 s; 1 s keeps the test short, the calls are the same
)

type options struct {
	directory     string
	caBundle      string
	eabKID        string
	eabHMAC       string
	email         string
	domains       string
	challenge     string
	http01Port    int
	http01Address string
	dns01Mgmt     string
	dns01NS       string
	keyAlgorithm  string
	keySize       int
	certOut       string
	keyOut        string
	timeout       time.Duration
	duration      time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.directory, "directory", "", "ACME directory URL (the Issuer's spec.acme.server)")
	flag.StringVar(&o.caBundle, "ca-bundle", "", "PEM file the ACME server's TLS certificate verifies to (spec.acme.caBundle)")
	flag.StringVar(&o.eabKID, "eab-kid", "", "EAB key id (spec.acme.externalAccountBinding.keyID)")
	flag.StringVar(&o.eabHMAC, "eab-hmac", "", "EAB HMAC key, base64url as in the EAB Secret")
	flag.StringVar(&o.email, "email", "", "account contact (spec.acme.email)")
	flag.StringVar(&o.domains, "domains", "", "comma-separated DNS names of the Certificate (spec.dnsNames)")
	flag.StringVar(&o.challenge, "challenge", "http-01", "http-01 or dns-01 (the Issuer's one solver)")
	flag.IntVar(&o.http01Port, "http01-port", 0, "port the http-01 solver listens on (all addresses, as the solver pod)")
	flag.StringVar(&o.http01Address, "http01-check-address", "127.0.0.1", "address the http-01 self-check connects to")
	flag.StringVar(&o.dns01Mgmt, "dns01-challtestsrv", "", "pebble-challtestsrv management URL the dns-01 TXT record is written to")
	flag.StringVar(&o.dns01NS, "dns01-nameserver", "", "host:port of the resolver the dns-01 self-check asks")
	flag.StringVar(&o.keyAlgorithm, "key-algorithm", "RSA", "Certificate spec.privateKey.algorithm: RSA, ECDSA or Ed25519")
	flag.IntVar(&o.keySize, "key-size", 0, "Certificate spec.privateKey.size (0: cert-manager's default)")
	flag.StringVar(&o.certOut, "cert-out", "", "file the issued chain is written to (PEM)")
	flag.StringVar(&o.keyOut, "key-out", "", "file the certificate's private key is written to (PEM)")
	flag.DurationVar(&o.timeout, "timeout", 4*time.Minute, "give up after this long")
	flag.DurationVar(&o.duration, "duration", 0, "the Certificate's spec.duration under an Issuer with enableDurationFeature (0: off, the default)")
	flag.Parse()
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "certmanager-acme:", err)
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "certmanager-acme: error:", describe(err))
		os.Exit(1)
	}
}

func (o options) validate() error {
	switch {
	case o.directory == "" || o.domains == "" || o.certOut == "" || o.keyOut == "":
		return errors.New("-directory, -domains, -cert-out and -key-out are required")
	case (o.eabKID == "") != (o.eabHMAC == ""):
		return errors.New("-eab-kid and -eab-hmac go together")
	case o.challenge == "http-01" && o.http01Port == 0:
		return errors.New("http-01 needs -http01-port")
	case o.challenge == "dns-01" && (o.dns01Mgmt == "" || o.dns01NS == ""):
		return errors.New("dns-01 needs -dns01-challtestsrv and -dns01-nameserver")
	case o.challenge != "http-01" && o.challenge != "dns-01":
		return fmt.Errorf("unknown -challenge %q (http-01, dns-01)", o.challenge)
	}
	return nil
}

// describe adds the ACME problem type to an *acmeapi.Error's text (its Error() shows only status and detail).
func describe(err error) string {
	var acmeErr *acmeapi.Error
	if errors.As(err, &acmeErr) && acmeErr.ProblemType != "" {
		return fmt.Sprintf("%v (%s)", err, acmeErr.ProblemType)
	}
	return err.Error()
}

func step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "certmanager-acme: "+format+"\n", args...)
}

func run(ctx context.Context, o options) error {
	// --- the Issuer's setup (pkg/issuer/acme/setup.go) ---
	accountKey, err := pki.GenerateRSAPrivateKey(pki.MinRSAKeySize) // createAccountPrivateKey
	if err != nil {
		return err
	}
	var caBundle []byte
	if o.caBundle != "" {
		if caBundle, err = os.ReadFile(o.caBundle); err != nil {
			return err
		}
	}
	// accounts.NewClient is what pkg/issuer/acme/acme.go and pkg/controller/context.go build the client with
	// (the metrics are cert-manager's own; nothing scrapes them here).
	newClient := accounts.NewClient(metrics.New(logr.Discard(), clock.RealClock{}), "cert-manager-certmanager-acme-driver/v1.21.2")
	cl := newClient(accounts.NewClientOptions{CABundle: caBundle, Server: o.directory, PrivateKey: accountKey})

	var eab *acmeapi.ExternalAccountBinding
	if o.eabKID != "" {
		// getEABKey: the Secret's value is decoded as unpadded base64url
		encoded := []byte(o.eabHMAC)
		keyData := make([]byte, base64.RawURLEncoding.DecodedLen(len(encoded)))
		if _, err := base64.RawURLEncoding.Decode(keyData, encoded); err != nil {
			return fmt.Errorf("failed to decode external account binding key data: %v", err)
		}
		eab = &acmeapi.ExternalAccountBinding{KID: o.eabKID, Key: keyData}
	}
	account, err := registerAccount(ctx, cl, o.email, eab)
	if err != nil {
		return fmt.Errorf("register account: %w", err)
	}
	if account, err = ensureEmailUpToDate(ctx, cl, account, o.email); err != nil {
		return fmt.Errorf("update account: %w", err)
	}
	step("account %s (%s)", account.URI, account.Status)

	// --- the Certificate's key and CSR (keymanager, requestmanager controllers) ---
	crt := &cmapi.Certificate{Spec: cmapi.CertificateSpec{
		DNSNames:   strings.Split(o.domains, ","),
		PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.PrivateKeyAlgorithm(o.keyAlgorithm), Size: o.keySize},
	}}
	key, err := pki.GeneratePrivateKeyForCertificate(crt)
	if err != nil {
		return err
	}
	// The feature gates' v1.21 defaults (internal/controller/feature/features.go, not importable):
	// LiteralCertificateSubject true, UseCertificateRequestBasicConstraints false, NameConstraints true,
	// OtherNames true.
	csr, err := pki.GenerateCSR(crt,
		pki.WithUseLiteralSubject(true),
		pki.WithEncodeBasicConstraintsInRequest(false),
		pki.WithNameConstraints(true),
		pki.WithOtherNames(true),
	)
	if err != nil {
		return err
	}
	csrDER, err := pki.EncodeCSR(csr, key)
	if err != nil {
		return err
	}
	parsedCSR, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return err
	}

	// --- the Order (certificaterequests/acme buildOrder, then acmeorders createOrder) ---
	ids := orderIdentifiers(parsedCSR)
	var orderOptions []acmeapi.OrderOption
	if o.duration != 0 { // spec.duration is copied to the Order only with the Issuer's enableDurationFeature
		orderOptions = append(orderOptions, acmeapi.WithOrderNotAfter(time.Now().Add(o.duration)))
	}
	order, err := cl.AuthorizeOrder(ctx, ids, orderOptions...)
	if err != nil {
		return fmt.Errorf("error creating new order: %w", err)
	}
	orderURL, finalizeURL := order.URI, order.FinalizeURL
	step("order %s (%s), %d authorization(s)", orderURL, order.Status, len(order.AuthzURLs))

	// fetchMetadataForAuthorizations, then buildPartialRequiredChallenges + ensureKeysForChallenges
	var challenges []*cmacme.ChallengeSpec
	for _, authzURL := range order.AuthzURLs {
		authz, err := cl.GetAuthorization(ctx, authzURL)
		if err != nil {
			return fmt.Errorf("failed to fetch authorization: %w", err)
		}
		if authz.Status == acmeapi.StatusValid { // InitialState valid: no Challenge resource
			continue
		}
		var picked *acmeapi.Challenge
		for _, ch := range authz.Challenges {
			if ch.Type == o.challenge {
				picked = ch
				break
			}
		}
		if picked == nil {
			return fmt.Errorf("no configured challenge solvers can be used for %q (offered: %v)", authz.Identifier.Value, types(authz.Challenges))
		}
		chType, err := challengeType(picked.Type)
		if err != nil {
			return err
		}
		spec := &cmacme.ChallengeSpec{
			AuthorizationURL: authzURL,
			Type:             chType,
			URL:              picked.URI,
			DNSName:          authz.Identifier.Value,
			Token:            picked.Token,
			Wildcard:         authz.Wildcard,
		}
		if spec.Type == cmacme.ACMEChallengeTypeHTTP01 {
			spec.Key, err = cl.HTTP01ChallengeResponse(spec.Token)
		} else {
			spec.Key, err = cl.DNS01ChallengeRecord(spec.Token)
		}
		if err != nil {
			return err
		}
		challenges = append(challenges, spec)
	}

	// --- each Challenge (acmechallenges Sync) ---
	for _, ch := range challenges {
		if err := solveChallenge(ctx, cl, o, ch); err != nil {
			return err
		}
	}

	// --- the Order again: getACMEOrder until the server has moved it to ready, then finalizeOrder ---
	for {
		order, err = cl.GetOrder(ctx, orderURL)
		if err != nil {
			return fmt.Errorf("failed to retrieve the ACME order: %w", err)
		}
		if order.Status != acmeapi.StatusPending {
			break
		}
		select { // "waiting for ACME server to update the status of the order" (re-queued)
		case <-ctx.Done():
			return fmt.Errorf("order %s still pending: %w", orderURL, ctx.Err())
		case <-time.After(orderRequeuePeriod):
		}
	}
	if order.URI != "" {
		orderURL = order.URI
	}
	finalizeURL = order.FinalizeURL
	if order.Status != acmeapi.StatusReady {
		return fmt.Errorf("order %s is %s, not ready, after its challenges", orderURL, order.Status)
	}
	certs, certURL, err := cl.CreateOrderCert(ctx, finalizeURL, csrDER, true)
	if err != nil {
		return fmt.Errorf("error finalizing order: %w", err)
	}
	order, err = cl.GetOrder(ctx, orderURL) // updateOrderStatus after CreateOrderCert
	if err != nil {
		return fmt.Errorf("error syncing order status: %w", err)
	}
	if order.Status != acmeapi.StatusValid {
		return fmt.Errorf("order %s is %s after finalizing", orderURL, order.Status)
	}
	step("certificate %s: %d certificate(s) in the chain", certURL, len(certs))

	// storeCertificateOnStatus: every DER certificate PEM-encoded, in the order the server sent them
	var chain bytes.Buffer
	for _, der := range certs {
		if err := pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der}); err != nil {
			return err
		}
	}
	keyPEM, err := pki.EncodePrivateKey(key, cmapi.PKCS1)
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.keyOut, keyPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(o.certOut, chain.Bytes(), 0o644)
}

// registerAccount is pkg/issuer/acme/setup.go's registerAccount.
func registerAccount(ctx context.Context, cl acmecl.Interface, email string, eab *acmeapi.ExternalAccountBinding) (*acmeapi.Account, error) {
	var contact []string
	if email != "" {
		contact = []string{fmt.Sprintf("mailto:%s", strings.ToLower(email))}
	}
	acc, err := cl.Register(ctx, &acmeapi.Account{Contact: contact, ExternalAccountBinding: eab}, acmeapi.AcceptTOS)
	if err == acmeapi.ErrAccountAlreadyExists {
		return cl.GetReg(ctx, "")
	}
	return acc, err
}

// ensureEmailUpToDate is pkg/issuer/acme/setup.go's ensureEmailUpToDate.
func ensureEmailUpToDate(ctx context.Context, cl acmecl.Interface, acc *acmeapi.Account, specEmail string) (*acmeapi.Account, error) {
	registered := ""
	if len(acc.Contact) > 0 {
		registered = strings.Replace(acc.Contact[0], "mailto:", "", 1)
	}
	if registered == specEmail {
		return acc, nil
	}
	acc.Contact = nil
	if specEmail != "" {
		acc.Contact = []string{fmt.Sprintf("mailto:%s", strings.ToLower(specEmail))}
	}
	return cl.UpdateReg(ctx, acc)
}

// orderIdentifiers is buildOrder (names from the CSR) followed by createOrder's identifier sets (sorted,
// de-duplicated, the common name added when it is an IP or a DNS name).
func orderIdentifiers(csr *x509.CertificateRequest) []acmeapi.AuthzID {
	dns, ips := map[string]bool{}, map[string]bool{}
	for _, n := range csr.DNSNames {
		dns[n] = true
	}
	for _, ip := range csr.IPAddresses {
		ips[ip.String()] = true
	}
	if cn := csr.Subject.CommonName; cn != "" {
		if net.ParseIP(cn) != nil {
			ips[cn] = true
		} else {
			dns[cn] = true
		}
	}
	ids := acmeapi.DomainIDs(sorted(dns)...)
	return append(ids, acmeapi.IPIDs(sorted(ips)...)...)
}

func sorted(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// challengeType is pkg/controller/acmeorders/util.go's challengeType: the Challenge resource's type names.
func challengeType(t string) (cmacme.ACMEChallengeType, error) {
	switch t {
	case "http-01":
		return cmacme.ACMEChallengeTypeHTTP01, nil
	case "dns-01":
		return cmacme.ACMEChallengeTypeDNS01, nil
	default:
		return "", fmt.Errorf("unsupported challenge type: %v", t)
	}
}

func types(chs []*acmeapi.Challenge) []string {
	out := make([]string, 0, len(chs))
	for _, ch := range chs {
		out = append(out, ch.Type)
	}
	return out
}

// solveChallenge is the challenge controller's Sync for one Challenge: syncChallengeStatus, Present, the
// readiness self-check, acceptChallenge.
func solveChallenge(ctx context.Context, cl acmecl.Interface, o options, ch *cmacme.ChallengeSpec) error {
	// syncChallengeStatus: GetAuthorization (not GetChallenge) and the challenge picked by URL
	authz, err := cl.GetAuthorization(ctx, ch.AuthorizationURL)
	if err != nil {
		return err
	}
	var current *acmeapi.Challenge
	for _, c := range authz.Challenges {
		if c.URI == ch.URL {
			current = c
			break
		}
	}
	if current == nil {
		return errors.New("challenge was not present in authorization")
	}
	if current.Status == acmeapi.StatusValid {
		return nil
	}

	cleanup, stopped, err := present(ctx, o, ch)
	if err != nil {
		return fmt.Errorf("error presenting challenge: %w", err)
	}
	defer cleanup()
	if err := selfCheck(ctx, o, ch, stopped); err != nil {
		return fmt.Errorf("self check for %s %s: %w", ch.Type, ch.DNSName, err)
	}

	// acceptChallenge
	accepted, err := cl.Accept(ctx, &acmeapi.Challenge{URI: ch.URL, Token: ch.Token})
	if err != nil {
		return fmt.Errorf("error accepting challenge: %w", err)
	}
	step("accepted %s for %s (%s)", ch.Type, ch.DNSName, accepted.Status)
	waitCtx, cancel := context.WithTimeout(ctx, authorizationTimeout)
	defer cancel()
	authz, err = cl.WaitAuthorization(waitCtx, ch.AuthorizationURL)
	if err != nil {
		return fmt.Errorf("error accepting authorization: %w", err)
	}
	step("authorization for %s: %s", ch.DNSName, authz.Status)
	return nil
}

// solverStop is closed (done) when the http-01 solver stops; err is what its Listen returned.
type solverStop struct {
	done chan struct{}
	err  error
}

// present starts what cert-manager presents for the challenge; it returns the clean-up and, for http-01, the
// solver's stop signal (it stops by itself only when it cannot listen).
func present(ctx context.Context, o options, ch *cmacme.ChallengeSpec) (func(), *solverStop, error) {
	if ch.Type == cmacme.ACMEChallengeTypeHTTP01 {
		// the acmesolver pod: cert-manager's HTTP01Solver, listening on all addresses on the port
		s := &solver.HTTP01Solver{ListenPort: o.http01Port, Domain: ch.DNSName, Token: ch.Token, Key: ch.Key}
		stop := &solverStop{done: make(chan struct{})}
		go func() {
			stop.err = s.Listen(logr.Discard())
			close(stop.done)
		}()
		cleanup := func() {
			_ = s.Shutdown(context.Background())
			<-stop.done
		}
		return cleanup, stop, nil
	}
	fqdn, err := dnsutil.DNS01LookupFQDN(ctx, ch.DNSName, false, o.dns01NS)
	if err != nil {
		return nil, nil, err
	}
	if err := challtestsrv(ctx, o.dns01Mgmt, "/set-txt", map[string]string{"host": fqdn, "value": ch.Key}); err != nil {
		return nil, nil, err
	}
	return func() {
		_ = challtestsrv(context.Background(), o.dns01Mgmt, "/clear-txt", map[string]string{"host": fqdn})
	}, nil, nil
}

func challtestsrv(ctx context.Context, base, path string, body map[string]string) error {
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pebble-challtestsrv %s: HTTP %d", path, resp.StatusCode)
	}
	return nil
}

// selfCheck is the selfCheckReadinessEvaluator: it polls until the solver's answer is visible (cert-manager
// re-queues the Challenge until then). http-01: GET http://<domain>/.well-known/acme-challenge/<token> (the
// connection goes to -http01-check-address, as the validator's resolver answers the name with it) must return
// the key, as pkg/issuer/acme/http/http.go testReachability checks. dns-01: PreCheckDNS against the resolver.
func selfCheck(ctx context.Context, o options, ch *cmacme.ChallengeSpec, stop *solverStop) error {
	var solverStopped <-chan struct{} // nil (never ready) for dns-01
	if stop != nil {
		solverStopped = stop.done
	}
	var check func() error
	if ch.Type == cmacme.ACMEChallengeTypeHTTP01 {
		address := net.JoinHostPort(o.http01Address, fmt.Sprint(o.http01Port))
		client := &http.Client{
			Timeout: 5 * time.Second,
			Transport: &http.Transport{
				Proxy: nil,
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, address)
				},
			},
		}
		url := fmt.Sprintf("http://%s%s/%s", ch.DNSName, solver.HTTPChallengePath, ch.Token)
		check = func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != ch.Key {
				return fmt.Errorf("wrong status code '%d' or key from %s", resp.StatusCode, url)
			}
			return nil
		}
	} else {
		check = func() error {
			fqdn, err := dnsutil.DNS01LookupFQDN(ctx, ch.DNSName, false, o.dns01NS)
			if err != nil {
				return err
			}
			ok, err := dnsutil.PreCheckDNS(ctx, fqdn, ch.Key, []string{o.dns01NS}, false)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("DNS record for %q not yet propagated", ch.DNSName)
			}
			return nil
		}
	}
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%v (%w)", err, ctx.Err())
		case <-solverStopped:
			return fmt.Errorf("the http-01 solver stopped: %v", stop.err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
