// Command posts is a small resource server built on gatehouse/guard: an
// in-memory blog whose rules are
//
//	GET    /posts, /posts/{id}  anyone
//	POST   /posts               a credential with scope write; the caller becomes the author
//	PATCH  /posts/{id}          scope write, and the author or a user with role admin
//	DELETE /posts/{id}          scope write, and a user with role editor or admin
//
// It accepts Gatehouse access tokens (verified locally against the JWKS)
// and, given an introspection key, API keys and Gatehouse session cookies.
// See README.md for running it against a local Gatehouse.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"gatehouse/guard"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "posts:", err)
		}
		os.Exit(2)
	}
}

// run starts the service and serves until ctx ends. listening, when not
// nil, is told the address once the socket is open.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, listening func(addr string)) error {
	fs := flag.NewFlagSet("posts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	gatehouseURL := fs.String("gatehouse", envOr(getenv, "POSTS_GATEHOUSE_URL", "http://localhost:8080"),
		"Gatehouse's public URL, the issuer of the tokens (env POSTS_GATEHOUSE_URL)")
	audience := fs.String("audience", getenv("POSTS_AUDIENCE"),
		"aud the access tokens must carry (env POSTS_AUDIENCE; default: the Gatehouse URL)")
	addr := fs.String("addr", envOr(getenv, "POSTS_ADDR", "127.0.0.1:8081"), "listen address (env POSTS_ADDR)")
	keyFile := fs.String("introspection-key-file", getenv("POSTS_INTROSPECTION_KEY_FILE"),
		"file holding the introspection key (env POSTS_INTROSPECTION_KEY_FILE, or the key itself in POSTS_INTROSPECTION_KEY)")
	insecure := fs.Bool("allow-insecure-http", false, "allow http:// to a Gatehouse that is not on loopback")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: posts [flags]\n\nThe introspection key is an API key with scope introspect; without it only\n"+
			"access tokens are accepted (no API keys, no session cookies). It is never a\nflag value, which would show in the process list.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	key := getenv("POSTS_INTROSPECTION_KEY")
	if *keyFile != "" {
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			return fmt.Errorf("introspection key: %w", err)
		}
		key = strings.TrimSpace(string(b))
	}
	g, err := guard.New(guard.Config{
		Issuer:            *gatehouseURL,
		Audience:          *audience,
		IntrospectionKey:  key,
		AllowInsecureHTTP: *insecure,
		Logger:            log,
	})
	if err != nil {
		return err
	}
	if key == "" {
		log.Warn("POSTS_INTROSPECTION_KEY is not set: only access tokens are accepted (no API keys, no session cookies)")
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           newHandler(g),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("posts listening", "addr", ln.Addr().String(), "gatehouse", *gatehouseURL)
	if listening != nil {
		listening(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
