// A Go server for fugue (standard library only): serves every listener
// fugue passes (fd 3 .. 3+LISTEN_FDS-1), says READY=1 to NOTIFY_SOCKET once
// it serves, and on TERM stops accepting and finishes the requests in
// flight (http.Server.Shutdown). GET / answers "worker <slot> pid <pid> gen
// <generation>"; GET /slow?ms=N answers after N ms, and logs when it starts.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// sdNotify sends one datagram to $NOTIFY_SOCKET (sd_notify(3)).
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}

func handler(w http.ResponseWriter, r *http.Request) {
	pid := os.Getpid()
	if r.URL.Path == "/slow" {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		log.Printf("slow request started (pid %d)", pid)
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintf(w, "slow done pid %d\n", pid)
		return
	}
	fmt.Fprintf(w, "worker %s pid %d gen %s\n", os.Getenv("FUGUE_WORKER_ID"), pid,
		os.Getenv("FUGUE_GENERATION"))
}

func main() {
	log.SetFlags(0)
	n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if n < 1 || os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		log.Fatal("no listening socket on fd 3 (LISTEN_FDS/LISTEN_PID): run me under fugue")
	}
	srv := &http.Server{Handler: http.HandlerFunc(handler)}
	var served sync.WaitGroup
	for fd := 3; fd < 3+n; fd++ {
		ln, err := net.FileListener(os.NewFile(uintptr(fd), "listener"))
		if err != nil {
			log.Fatalf("fd %d: %v", fd, err)
		}
		served.Add(1)
		go func() {
			defer served.Done()
			if err := srv.Serve(ln); err != http.ErrServerClosed {
				log.Fatal(err)
			}
		}()
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	if err := sdNotify("READY=1"); err != nil {
		log.Printf("sd_notify: %v", err)
	}
	log.Printf("compat app serving (pid %d)", os.Getpid())
	<-stop
	// Shutdown closes the listeners, waits for the requests in flight.
	if err := srv.Shutdown(context.Background()); err != nil {
		log.Print(err)
	}
	served.Wait()
	log.Printf("compat app drained (pid %d)", os.Getpid())
}
