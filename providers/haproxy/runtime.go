package haproxy

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/providers"
)

// runtime is HAProxy's runtime API on one stats socket, in its non-interactive
// mode: one connection per command, HAProxy answers and closes.
type runtime struct {
	network, addr string
	timeout       time.Duration
}

// maxAnswer bounds an answer; `show stat` of a large config is well below it.
const maxAnswer = 16 << 20

// do sends one command and returns HAProxy's answer. Failing to reach the
// socket, or losing the connection, is worth retrying (HAProxy reloading); the
// answer's text is for the caller to judge.
func (r runtime) do(ctx context.Context, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, r.network, r.addr)
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API %s:%s: %w", r.network, r.addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("haproxy runtime API %s:%s: send %q: %w", r.network, r.addr, cmd, err)
	}
	b, err := io.ReadAll(io.LimitReader(conn, maxAnswer))
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API %s:%s: %q: %w", r.network, r.addr, cmd, err)
	}
	if len(b) == 0 {
		// HAProxy always answers at least an empty line; nothing at all is a
		// connection closed before the answer.
		return "", fmt.Errorf("haproxy runtime API %s:%s: %q: connection closed without an answer", r.network, r.addr, cmd)
	}
	return string(b), nil
}

// judge classifies the text of an answer that should have been empty or data:
// an unknown backend or server is NotFound, anything else HAProxy says (a
// refused permission, an unknown command, a value out of range) is Invalid.
func judge(cmd, answer string) error {
	msg := strings.TrimSpace(answer)
	switch {
	case strings.HasPrefix(msg, "No such backend"), strings.HasPrefix(msg, "Can't find backend"),
		strings.HasPrefix(msg, "No such server"), strings.HasPrefix(msg, "No such proxy"):
		return providers.NotFound("haproxy %q: %s", cmd, msg)
	}
	return providers.Invalid("haproxy %q: %s", cmd, firstLine(msg))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// server is one server of the backend as `show servers state` reports it.
type server struct {
	name   string
	weight int // srv_uweight: the weight set by the config or the runtime API
	admin  int // srv_admin_state: the administrative state's flags
}

// Flags of srv_admin_state (HAProxy's SRV_ADMF_*): the ones set by `set server
// ... state maint` and `... state drain`.
const (
	adminForcedMaint = 0x01
	adminForcedDrain = 0x08
)

// drained says whether the server was put in the drain state, and not in
// maintenance as well.
func (s server) drained() bool { return s.admin&adminForcedDrain != 0 && s.admin&adminForcedMaint == 0 }

// servers lists the backend's servers with their weights.
func (r runtime) servers(ctx context.Context, backend string) ([]server, error) {
	cmd := "show servers state " + backend
	out, err := r.do(ctx, cmd)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), maxAnswer)
	var header []string
	var list []server
	first := true
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			continue
		case first && isNumber(line): // the format's version
			first = false
			continue
		case strings.HasPrefix(line, "#"):
			header = strings.Fields(strings.TrimPrefix(line, "#"))
			continue
		}
		first = false
		if header == nil {
			return nil, judge(cmd, out)
		}
		f := strings.Fields(line)
		get := func(col string) string {
			for i, h := range header {
				if h == col && i < len(f) {
					return f[i]
				}
			}
			return ""
		}
		if get("be_name") != backend {
			continue
		}
		w, err := strconv.Atoi(get("srv_uweight"))
		if err != nil {
			return nil, fmt.Errorf("haproxy %q: cannot read srv_uweight in %q", cmd, line)
		}
		a, err := strconv.Atoi(get("srv_admin_state"))
		if err != nil {
			return nil, fmt.Errorf("haproxy %q: cannot read srv_admin_state in %q", cmd, line)
		}
		list = append(list, server{name: get("srv_name"), weight: w, admin: a})
	}
	if header == nil {
		return nil, judge(cmd, out)
	}
	return list, nil
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// setWeight sets one server's weight.
func (r runtime) setWeight(ctx context.Context, backend, srv string, w int) error {
	return r.command(ctx, fmt.Sprintf("set server %s/%s weight %d", backend, srv, w))
}

// setState sets one server's administrative state: ready or drain.
func (r runtime) setState(ctx context.Context, backend, srv, state string) error {
	return r.command(ctx, fmt.Sprintf("set server %s/%s state %s", backend, srv, state))
}

// command sends a command whose only answer, when it works, is an empty line.
func (r runtime) command(ctx context.Context, cmd string) error {
	out, err := r.do(ctx, cmd)
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "" {
		return judge(cmd, out)
	}
	return nil
}

// current returns the backend's servers' current sessions plus queued
// requests, by server name, from `show stat`.
func (r runtime) current(ctx context.Context, backend string) (map[string]int, error) {
	const cmd = "show stat"
	out, err := r.do(ctx, cmd)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(out, "# ") {
		return nil, judge(cmd, out)
	}
	cr := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("haproxy %q: %w", cmd, err)
	}
	if len(rows) == 0 {
		return nil, errors.New("haproxy \"show stat\": no header")
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	px, sv, scur, qcur := col["pxname"], col["svname"], col["scur"], col["qcur"]
	found := false
	n := map[string]int{}
	for _, row := range rows[1:] {
		if len(row) <= max(px, sv, scur, qcur) || row[px] != backend {
			continue
		}
		found = true
		if row[sv] == "FRONTEND" || row[sv] == "BACKEND" {
			continue
		}
		s, _ := strconv.Atoi(row[scur])
		q, _ := strconv.Atoi(row[qcur])
		n[row[sv]] = s + q
	}
	if !found {
		return nil, providers.NotFound("haproxy %q: no backend %q", cmd, backend)
	}
	return n, nil
}
