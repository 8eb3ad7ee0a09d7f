package app

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"io"
	"os"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// stdin is where --password-file - reads (a variable for tests).
var stdin io.Reader = os.Stdin

// cliCommand is one `users` or `tokens` subcommand: it gets the open store, the name given
// before or after the flags ("" if none) and its parsed flags.
type cliCommand struct {
	name  string // "users add"
	needs bool   // a NAME argument is required
	flags func(fs *flag.FlagSet) runFunc
}

type runFunc = func(ctx context.Context, st *store.DB, name string, stdout, stderr io.Writer) error

// changeOne is a command that changes one named user or token and says so.
func changeOne(cmd, what, done string, change func(st *store.DB, ctx context.Context, name string) error) cliCommand {
	return cliCommand{cmd, true, func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, st *store.DB, name string, _, stderr io.Writer) error {
			if err := notFound(change(st, ctx, name), what, name); err != nil {
				return err
			}
			fmt.Fprintf(stderr, done+"\n", name)
			return cliAudit(ctx, st, cmd, name, "")
		}
	}}
}

var userName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

var cliCommands = []cliCommand{
	{"users add", true, func(fs *flag.FlagSet) runFunc {
		role, stores := roleFlags(fs)
		pwFile := passwordFlag(fs)
		return func(ctx context.Context, st *store.DB, name string, _, stderr io.Writer) error {
			o := store.Operator{Name: name}
			var err error
			if o.Role, o.Stores, err = parseRoleStores(*role, *stores); err != nil {
				return err
			}
			if o.PasswordHash, err = readPassword(*pwFile); err != nil {
				return err
			}
			if err := st.AddOperator(ctx, o); errors.Is(err, store.ErrExists) {
				return fmt.Errorf("user %s exists; change the password with `users passwd %s`", name, name)
			} else if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "added user %s (%s, %s)\n", name, o.Role, storesText(o.Stores))
			return cliAudit(ctx, st, "users add", name, o.Role+" "+storesText(o.Stores))
		}
	}},
	{"users list", false, func(fs *flag.FlagSet) runFunc {
		return func(ctx context.Context, st *store.DB, _ string, stdout, _ io.Writer) error {
			list, err := st.Operators(ctx)
			if err != nil {
				return err
			}
			rows := [][]string{{"USER", "ROLE", "STORES", "STATE", "CREATED"}}
			for _, o := range list {
				state := "enabled"
				if !o.DisabledAt.IsZero() {
					state = "disabled " + o.DisabledAt.Format(time.RFC3339)
				}
				rows = append(rows, []string{o.Name, o.Role, storesText(o.Stores), state, o.CreatedAt.Format(time.RFC3339)})
			}
			return writeTable(stdout, rows)
		}
	}},
	changeOne("users disable", "user", "disabled user %s; their sessions have ended", (*store.DB).DisableOperator),
	{"users passwd", true, func(fs *flag.FlagSet) runFunc {
		pwFile := passwordFlag(fs)
		return func(ctx context.Context, st *store.DB, name string, _, stderr io.Writer) error {
			h, err := readPassword(*pwFile)
			if err == nil {
				err = notFound(st.SetOperatorPassword(ctx, name, h), "user", name)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "changed the password of %s; their sessions have ended\n", name)
			return cliAudit(ctx, st, "users passwd", name, "")
		}
	}},
	{"tokens add", false, func(fs *flag.FlagSet) runFunc {
		role, stores := roleFlags(fs)
		name := fs.String("name", "", "the token's name (for list, revoke and the audit log)")
		expires := fs.String("expires", "90d", "lifetime: 90d, 12h, ... or never")
		return func(ctx context.Context, st *store.DB, _ string, stdout, stderr io.Writer) error {
			if !userName.MatchString(*name) {
				return fmt.Errorf("--name: %q: use 1-64 letters, digits and . _ @ -, starting with a letter or digit", *name)
			}
			k := store.APIToken{Name: *name}
			var err error
			if k.Role, k.Stores, err = parseRoleStores(*role, *stores); err != nil {
				return err
			}
			life, err := parseLifetime(*expires)
			if err != nil {
				return err
			}
			if life > 0 {
				k.ExpiresAt = clock.Now().Add(life)
			}
			tok := auth.NewToken()
			k.Hash = auth.HashSecret(tok)
			if err := st.AddToken(ctx, k); errors.Is(err, store.ErrExists) {
				return fmt.Errorf("token %s exists; revoke it first or pick another name", k.Name)
			} else if err != nil {
				return err
			}
			until := "never expires"
			if life > 0 {
				until = "expires " + k.ExpiresAt.Format(time.RFC3339)
			}
			fmt.Fprintf(stderr, "added token %s (%s, %s, %s); it is shown once, above: send it as Authorization: Bearer TOKEN\n",
				k.Name, k.Role, storesText(k.Stores), until)
			if _, err := fmt.Fprintln(stdout, tok); err != nil {
				return err
			}
			return cliAudit(ctx, st, "tokens add", k.Name, k.Role+" "+storesText(k.Stores)+" "+until)
		}
	}},
	{"tokens list", false, func(fs *flag.FlagSet) runFunc {
		return func(ctx context.Context, st *store.DB, _ string, stdout, _ io.Writer) error {
			list, err := st.Tokens(ctx)
			if err != nil {
				return err
			}
			rows := [][]string{{"TOKEN", "ROLE", "STORES", "EXPIRES", "CREATED"}}
			for _, k := range list {
				exp := "never"
				if !k.ExpiresAt.IsZero() {
					exp = k.ExpiresAt.Format(time.RFC3339)
					if clock.Now().After(k.ExpiresAt) {
						exp += " (expired)"
					}
				}
				rows = append(rows, []string{k.Name, k.Role, storesText(k.Stores), exp, k.CreatedAt.Format(time.RFC3339)})
			}
			return writeTable(stdout, rows)
		}
	}},
	changeOne("tokens revoke", "token", "revoked token %s", (*store.DB).RevokeToken),
}

// runCLICommand runs `users …` or `tokens …` on the configured store; false if there is no
// such subcommand.
func runCLICommand(group string, args []string, stdout, stderr io.Writer) (bool, error) {
	if len(args) == 0 {
		return false, nil
	}
	for _, c := range cliCommands {
		if c.name != group+" "+args[0] {
			continue
		}
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		fs.SetOutput(stderr)
		var cf commonFlags
		cf.register(fs)
		run := c.flags(fs)
		name, err := parseWithName(fs, args[1:])
		if err != nil {
			return true, err
		}
		if c.needs && !userName.MatchString(name) {
			return true, fmt.Errorf("%s NAME: %q: use 1-64 letters, digits and . _ @ -, starting with a letter or digit", c.name, name)
		}
		_, st, err := cf.open(false)
		if err != nil {
			return true, err
		}
		defer st.Close()
		return true, run(context.Background(), st, name, stdout, stderr)
	}
	return false, nil
}

// parseWithName parses flags given before or after one positional argument, which it returns.
func parseWithName(fs *flag.FlagSet, args []string) (string, error) {
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	return name, nil
}

func roleFlags(fs *flag.FlagSet) (role, stores *string) {
	return fs.String("role", "", "viewer, operator or admin"), fs.String("stores", "", "limit to these stores (S001,S002); default every store")
}

func passwordFlag(fs *flag.FlagSet) *string {
	return fs.String("password-file", "", "file holding the password on its first line (- for stdin)")
}

func parseRoleStores(role, stores string) (string, []string, error) {
	r, err := auth.ParseRole(role)
	if err != nil {
		return "", nil, fmt.Errorf("--role: %w", err)
	}
	ids, err := auth.ParseStores(stores, protocol.ValidateStoreID)
	return r.String(), ids, err
}

// readPassword reads a password from a file or stdin (its first line), checks and hashes it.
func readPassword(path string) (string, error) {
	if path == "" {
		return "", errors.New("--password-file: missing; give a file holding the password, or - for stdin")
	}
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		defer f.Close()
		r = f
	}
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("--password-file: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if err := auth.CheckPassword(pw); err != nil {
		return "", err
	}
	return auth.HashPassword(pw), nil
}

// parseLifetime reads 90d, 36h, 30m or never (0).
func parseLifetime(s string) (time.Duration, error) {
	if s == "never" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 && n <= 3650 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d >= time.Minute {
		return d, nil
	}
	return 0, fmt.Errorf("--expires: %q: use a lifetime such as 90d, 12h or 30m (at least 1m), or never", s)
}

// writeTable prints rows (the first is the header) in aligned columns.
func writeTable(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func storesText(ids []string) string {
	if len(ids) == 0 {
		return "all stores"
	}
	return "stores " + strings.Join(ids, ",")
}

func notFound(err error, what, name string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no %s %s (see `%ss list`)", what, name, what)
	}
	return err
}

// cliAudit records a change made with the command line in the audit log, by the OS user.
func cliAudit(ctx context.Context, st *store.DB, action, target, detail string) error {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	return st.AddAudit(ctx, store.AuditEntry{Actor: "cli:" + who, Action: action, Target: target, Detail: detail, Remote: "local", Outcome: "ok"})
}
