package mail_test

import (
	"context"
	"strings"
	"testing"

	"gatehouse/internal/auth"
)

// An administrator's test mail (SPEC §17) goes to the address queued with
// it, whether or not an account has it, links to the console's settings
// under the public URL, and holds no token.
func TestWorkerSendsTestMail(t *testing.T) {
	st := newTestStore(t)
	ada := st.createUser(t, "ada@example.com")
	rec := &recorder{}
	const public = "https://id.example.org"
	w := newWorker(t, st.DB, rec, public)
	ctx := context.Background()
	idOutside := st.enqueue(t, auth.MailTest, "ops@elsewhere.example", ada.ID) // no account has it
	idAda := st.enqueue(t, auth.MailTest, ada.Email, ada.ID)
	for range 2 {
		if !w.RunOnce(ctx) {
			t.Fatal("a test job was not processed")
		}
	}
	if len(rec.msgs) != 2 {
		t.Fatalf("%d messages sent, want 2", len(rec.msgs))
	}
	for i, want := range []string{"ops@elsewhere.example", ada.Email} {
		m := rec.msgs[i]
		if m.To != want {
			t.Errorf("message %d to %q, want %q", i, m.To, want)
		}
		if !strings.Contains(m.Subject, "Test mail") || !strings.Contains(m.Text, want) {
			t.Errorf("message %d: subject %q, text %q", i, m.Subject, m.Text)
		}
		ls := append(links(m.Text), links(m.HTML)...)
		if len(ls) == 0 {
			t.Errorf("message %d has no link", i)
		}
		for _, l := range ls {
			if l != public+"/admin/settings" {
				t.Errorf("message %d links to %q, want %s/admin/settings (and no token)", i, l, public)
			}
		}
	}
	for _, id := range []string{idOutside, idAda} {
		if j := st.job(t, id); !j.Done || j.Failed || j.Attempts != 1 {
			t.Errorf("job %s = %+v, want done on the first attempt", id, j)
		}
	}
}
