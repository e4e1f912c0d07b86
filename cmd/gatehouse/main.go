// Command gatehouse is a self-hosted authentication and authorization
// server. See README.md, or run "gatehouse --help".
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"gatehouse/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cli.Run(ctx, cli.Env{Args: os.Args[1:], Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	switch {
	case err == nil, cli.IsHelp(err):
	case cli.IsUsage(err):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "gatehouse:", err)
		os.Exit(1)
	}
}
