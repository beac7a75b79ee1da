package cri

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"golang.org/x/net/websocket"

	"github.com/runsc/runsc/tests/internal/ctrdenv"
)

// The CRI streaming server speaks Kubernetes' remote command protocol
// over SPDY or WebSocket; the test uses WebSocket (golang.org/x/net, already
// a dependency) with the v4 channel protocol rather than client-go's
// remotecommand, which would pull in client-go and apimachinery: every
// binary message starts with its channel's number.
const (
	wsProtocol     = "v4.channel.k8s.io"
	chanStdin      = 0
	chanStdout     = 1
	chanStderr     = 2
	chanError      = 3
	chanResize     = 4
	maxStreamBytes = 1 << 20
)

// streamResult is what a remote command session returned.
type streamResult struct {
	stdout, stderr string
	// status is the error channel's metav1.Status, raw.
	status string
	// exitCode is the status's exit code: 0 on Success, the
	// NonZeroExitCode cause's on failure, -1 if neither.
	exitCode int
}

// k8sStatus is the part of metav1.Status the error channel carries.
type k8sStatus struct {
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Details struct {
		Causes []struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"causes"`
	} `json:"details"`
}

// streamExec connects to a CRI Exec URL (http://127.0.0.1:PORT/exec/TOKEN
// in containerd's network namespace), sends input on stdin (after a
// terminal size on the resize channel, when rows > 0), and reads until
// the server closes the session or timeout passes.
func streamExec(rawURL string, d *ctrdenv.Containerd, input string, rows, cols uint16, timeout time.Duration) (streamResult, error) {
	res := streamResult{exitCode: -1}
	u, err := url.Parse(rawURL)
	if err != nil {
		return res, fmt.Errorf("exec URL %q: %v", rawURL, err)
	}
	conn, err := d.Dial("tcp", u.Host, timeout)
	if err != nil {
		return res, fmt.Errorf("connecting to %s in containerd's network namespace: %v", u.Host, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	ws := *u
	ws.Scheme = "ws"
	cfg, err := websocket.NewConfig(ws.String(), "http://"+u.Host+"/")
	if err != nil {
		return res, err
	}
	cfg.Protocol = []string{wsProtocol}
	c, err := websocket.NewClient(cfg, conn)
	if err != nil {
		return res, fmt.Errorf("WebSocket handshake with %s (protocol %s): %v", ws.String(), wsProtocol, err)
	}
	defer c.Close()
	if rows > 0 {
		size, _ := json.Marshal(map[string]uint16{"Width": cols, "Height": rows})
		if err := websocket.Message.Send(c, append([]byte{chanResize}, size...)); err != nil {
			return res, fmt.Errorf("sending the terminal size: %v", err)
		}
	}
	if input != "" {
		if err := websocket.Message.Send(c, append([]byte{chanStdin}, input...)); err != nil {
			return res, fmt.Errorf("sending stdin: %v", err)
		}
	}
	var stdout, stderr, status []byte
	for {
		var msg []byte
		if err := websocket.Message.Receive(c, &msg); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return res, fmt.Errorf("reading the session (stdout so far %q): %v", stdout, err)
		}
		if len(msg) == 0 {
			continue
		}
		switch msg[0] {
		case chanStdout:
			stdout = append(stdout, msg[1:]...)
		case chanStderr:
			stderr = append(stderr, msg[1:]...)
		case chanError:
			status = append(status, msg[1:]...)
		}
		if len(stdout)+len(stderr) > maxStreamBytes {
			return res, fmt.Errorf("more than %d bytes of output", maxStreamBytes)
		}
	}
	res.stdout, res.stderr, res.status = string(stdout), string(stderr), string(status)
	var st k8sStatus
	if len(status) > 0 && json.Unmarshal(status, &st) == nil {
		switch st.Status {
		case "Success":
			res.exitCode = 0
		default:
			for _, cause := range st.Details.Causes {
				if cause.Reason == "ExitCode" {
					if n, err := strconv.Atoi(cause.Message); err == nil {
						res.exitCode = n
					}
				}
			}
		}
	}
	return res, nil
}
