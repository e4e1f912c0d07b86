// Command guardhello serves the hello-world handler bare on one address,
// behind guard's middleware (verifying Gatehouse access tokens against the
// JWKS) on another, and — given an API key with scope introspect — behind a
// guard that also follows the revocation feed on a third, so a load test
// can compare them in one run.
package main

import (
	"flag"
	"log"
	"net/http"

	"gatehouse/guard"
)

func main() {
	var (
		issuer = flag.String("issuer", "http://127.0.0.1:18080", "Gatehouse public URL")
		bare   = flag.String("bare", "127.0.0.1:18082", "address of the bare handler")
		guard_ = flag.String("guarded", "127.0.0.1:18083", "address of the guarded handler")
		feed   = flag.String("feed", "", "address of the handler guarded with the revocation feed on (needs -key)")
		key    = flag.String("key", "", "an API key with scope introspect, for -feed")
	)
	flag.Parse()
	body := []byte(`{"hello":"world"}` + "\n")
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	g, err := guard.New(guard.Config{Issuer: *issuer, AllowInsecureHTTP: true})
	if err != nil {
		log.Fatal(err)
	}
	if *feed != "" {
		if *key == "" {
			log.Fatal("guardhello: -feed needs -key (an API key with scope introspect)")
		}
		gf, err := guard.New(guard.Config{Issuer: *issuer, AllowInsecureHTTP: true, IntrospectionKey: *key, RevocationFeed: true})
		if err != nil {
			log.Fatal(err)
		}
		defer gf.Close()
		go func() { log.Fatal(http.ListenAndServe(*feed, gf.Middleware(hello))) }()
	}
	go func() { log.Fatal(http.ListenAndServe(*bare, hello)) }()
	log.Fatal(http.ListenAndServe(*guard_, g.Middleware(hello)))
}
