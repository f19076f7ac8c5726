// Builds lego v5 (the ACME client the end-to-end tests drive) with the one logging module the Go module proxy
// here lacks replaced by a stub, and only the DNS providers named in build tags (lego_dnslight: none by default;
// lego_dns_exec: the exec provider). tests/tools/build.sh lego runs, here:
//   GOFLAGS=-mod=mod go build -tags lego_dnslight,lego_dns_exec github.com/go-acme/lego/v5
// (not `go mod tidy`: tidy wants every DNS provider's modules, several of which the proxy does not serve).
module gatewaycerts.test/legobuild

go 1.26.0

require github.com/go-acme/lego/v5 v5.6.0

replace gitlab.com/greyxor/slogor => ./slogor
