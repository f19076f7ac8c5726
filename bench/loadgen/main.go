// Command loadgen replays HTTP requests against the service from its own process, over many keep-alive
// connections, and prints one JSON object of throughput and latency figures. Used by bench/run.py.
//
// Closed loop by default (each connection sends as soon as its last answer is in: a saturation test, whose
// p99 is about the queue depth over the rate). With -rate R it is open loop at a fixed offered rate: request
// i is due at i/R seconds, taken by the next free connection, and its latency counts from when it was due.
//
// The requests file holds one JSON object per line: {"method", "path", "headers": {...}, "body": "..."}
// ("body_b64" instead of "body" for a binary body, e.g. an OCSP request).
// Request i of the run is line i modulo the number of lines, so a file of N distinct uploads gives N
// distinct requests.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

type request struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	BodyB64 string            `json:"body_b64"`
}

type result struct {
	Requests    int            `json:"requests"`
	OK          int            `json:"ok"`
	Status      map[string]int `json:"status"`
	Errors      int            `json:"errors"`
	FirstError  string         `json:"first_error,omitempty"`
	Seconds     float64        `json:"seconds"`
	RPS         float64        `json:"rps"`
	P50         float64        `json:"p50_ms"`
	P90         float64        `json:"p90_ms"`
	P99         float64        `json:"p99_ms"`
	Max         float64        `json:"max_ms"`
	Concurrency int            `json:"concurrency"`
	// With -rate: the offered rate, and the latencies are from each request's scheduled start (so time spent
	// waiting for a free connection behind a slow answer counts: no coordinated omission).
	OfferedRPS float64 `json:"offered_rps,omitempty"`
	Late       int     `json:"late,omitempty"` // requests sent more than 1 ms after their scheduled start
}

func load(path string) ([]request, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []request
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var r request
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, err
		}
		if r.BodyB64 != "" {
			raw, err := base64.StdEncoding.DecodeString(r.BodyB64)
			if err != nil {
				return nil, err
			}
			r.Body = string(raw)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

func main() {
	base := flag.String("url", "", "base URL, e.g. http://127.0.0.1:8080 (required)")
	file := flag.String("requests", "", "JSON-lines file of requests (required)")
	conc := flag.Int("c", 16, "concurrent connections")
	total := flag.Int("n", 1000, "requests to send")
	offset := flag.Int("offset", 0, "index of the first request line to use")
	cacert := flag.String("cacert", "", "PEM file of the root to trust for an https URL (a peer CA on loopback)")
	rate := flag.Float64("rate", 0, "open loop: start request i at i/rate seconds (0: closed loop, each "+
		"connection sends its next request when the last is answered)")
	flag.Parse()
	if *base == "" || *file == "" {
		fmt.Fprintln(os.Stderr, "usage: loadgen -url URL -requests FILE [-c N] [-n N]")
		os.Exit(2)
	}
	reqs, err := load(*file)
	if err != nil || len(reqs) == 0 {
		fmt.Fprintln(os.Stderr, "loadgen: cannot read requests:", err)
		os.Exit(1)
	}
	transport := &http.Transport{MaxIdleConns: *conc, MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc,
		DisableCompression: true}
	if *cacert != "" {
		pem, err := os.ReadFile(*cacert)
		pool := x509.NewCertPool()
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			fmt.Fprintln(os.Stderr, "loadgen: cannot read the root file:", err)
			os.Exit(1)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool}
		transport.ForceAttemptHTTP2 = false // HTTP/1.1 keep-alive connections, as against the service
	}
	client := &http.Client{Transport: transport, Timeout: 120 * time.Second}

	latencies := make([]float64, *total)
	statuses := make([]int, *total)
	var next int64 = -1
	var errs, late int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(atomic.AddInt64(&next, 1))
				if i >= *total {
					return
				}
				r := reqs[(i+*offset)%len(reqs)]
				req, _ := http.NewRequest(r.Method, *base+r.Path, bytes.NewReader([]byte(r.Body)))
				for k, v := range r.Headers {
					req.Header.Set(k, v)
				}
				t0 := time.Now()
				if *rate > 0 {
					t0 = start.Add(time.Duration(float64(i) / *rate * float64(time.Second)))
					if wait := time.Until(t0); wait > 0 {
						time.Sleep(wait)
					} else if wait < -time.Millisecond {
						atomic.AddInt64(&late, 1)
					}
				}
				resp, err := client.Do(req)
				if err != nil {
					atomic.AddInt64(&errs, 1)
					firstErr.CompareAndSwap(nil, err.Error())
					latencies[i] = float64(time.Since(t0).Microseconds()) / 1000
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				latencies[i] = float64(time.Since(t0).Microseconds()) / 1000
				statuses[i] = resp.StatusCode
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	res := result{Requests: *total, Status: map[string]int{}, Errors: int(errs), Seconds: elapsed,
		RPS: float64(*total) / elapsed, Concurrency: *conc, OfferedRPS: *rate, Late: int(late)}
	if v := firstErr.Load(); v != nil {
		res.FirstError = v.(string)
	}
	for _, s := range statuses {
		if s != 0 {
			res.Status[fmt.Sprint(s)]++
			if s >= 200 && s < 300 {
				res.OK++
			}
		}
	}
	sorted := append([]float64(nil), latencies...)
	sort.Float64s(sorted)
	res.P50, res.P90, res.P99 = percentile(sorted, 0.50), percentile(sorted, 0.90), percentile(sorted, 0.99)
	res.Max = sorted[len(sorted)-1]
	json.NewEncoder(os.Stdout).Encode(res)
}
