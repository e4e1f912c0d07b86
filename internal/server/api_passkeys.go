package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"gatehouse/internal/auth"
)

// PasskeyBody describes a passkey; no key material.
type PasskeyBody struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	CredentialID string     `json:"credential_id" doc:"The WebAuthn credential id, base64url"`
	CreatedAt    time.Time  `json:"created_at"`
	LastUsedAt   *time.Time `json:"last_used_at"`
}

func passkeyView(p *auth.Passkey) PasskeyBody {
	return PasskeyBody{ID: p.ID, Name: p.Name, CredentialID: base64.RawURLEncoding.EncodeToString(p.CredentialID), CreatedAt: p.CreatedAt, LastUsedAt: p.LastUsedAt}
}

type beginOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		PublicKey json.RawMessage `json:"publicKey" doc:"Options for PublicKeyCredential.parseCreationOptionsFromJSON / parseRequestOptionsFromJSON"`
		Ceremony  string          `json:"ceremony" doc:"Send back as ?ceremony= on finish"`
	}
}

type finishInput struct {
	Ceremony string         `query:"ceremony" maxLength:"128"`
	Body     map[string]any `doc:"credential.toJSON()"`
}

type loginBeginInput struct {
	Body *struct {
		Email string `json:"email,omitempty" maxLength:"320"`
	}
}

type loginFinishInput struct {
	Ceremony string         `query:"ceremony" maxLength:"128"`
	Tokens   bool           `query:"tokens" doc:"Also return an OAuth2 token response"`
	Body     map[string]any `doc:"credential.toJSON()"`
}

type loginFinishOutput struct {
	SetCookie    http.Cookie `header:"Set-Cookie"`
	CacheControl string      `header:"Cache-Control"`
	Body         struct {
		User         UserBody    `json:"user"`
		Session      SessionBody `json:"session"`
		AccessToken  string      `json:"access_token,omitempty"`
		TokenType    string      `json:"token_type,omitempty"`
		ExpiresIn    int         `json:"expires_in,omitempty"`
		RefreshToken string      `json:"refresh_token,omitempty"`
		Scope        string      `json:"scope,omitempty"`
	}
}

type passkeyOutput struct {
	Body PasskeyBody
}

// passkeyAddedOutput is the new passkey; when it was added with an
// enrolment-only mfa_token (SPEC §13), the sign-in it finishes too.
type passkeyAddedOutput struct {
	SetCookie    string `header:"Set-Cookie"`
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		PasskeyBody
		SignIn *signInBody `json:"sign_in,omitempty" doc:"an enrolment at sign-in: the finished sign-in (session and/or token response)"`
	}
}

type passkeyListOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Passkeys []PasskeyBody `json:"passkeys"`
	}
}

type passkeyRenameInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		Name string `json:"name" minLength:"1" maxLength:"200"`
	}
}

type passkeyIDInput struct {
	ID string `path:"id" maxLength:"64"`
}

// errNoPasskeys answers passkey ceremonies when the public URL cannot be a
// WebAuthn relying party (a bare IP address).
var errNoPasskeys = huma.ErrorWithHeaders(huma.Error503ServiceUnavailable("passkeys are disabled: GATEHOUSE_PUBLIC_URL must use a domain name (localhost in development), not an IP address"), http.Header{"Retry-After": {"3600"}})

func (s *Server) registerPasskeyRoutes(api huma.API) {
	tags := []string{"passkeys"}
	register(s, api, huma.Operation{
		OperationID: "passkey-register-begin", Method: http.MethodPost, Path: "/v1/passkeys/register/begin", Tags: tags,
		Summary: "Start adding a passkey", Security: secWrite, Errors: []int{401, 403},
	}, func(ctx context.Context, _ *struct{}) (*beginOutput, error) {
		p, u, err := s.passkeyOwner(ctx)
		if err != nil {
			return nil, err
		}
		opts, id, err := s.passkeys.BeginRegistration(ctx, p, u)
		if err != nil {
			return nil, err
		}
		return beginAnswer(opts, id), nil
	})

	register(s, api, huma.Operation{
		OperationID: "passkey-register-finish", Method: http.MethodPost, Path: "/v1/passkeys/register/finish", Tags: tags,
		Summary: "Finish adding a passkey", Description: "The body is the JSON of `credential.toJSON()`.",
		Security: secWrite, DefaultStatus: http.StatusCreated, Errors: []int{400, 401, 403, 409, 422},
	}, func(ctx context.Context, in *finishInput) (*passkeyAddedOutput, error) {
		p, u, err := s.passkeyOwner(ctx)
		if err != nil {
			return nil, err
		}
		pk, err := s.passkeys.FinishRegistration(ctx, p, u, in.Ceremony, rawJSON(in.Body), meta(ctx))
		if err != nil {
			return nil, err
		}
		out := &passkeyAddedOutput{CacheControl: "no-store"}
		out.Body.PasskeyBody = passkeyView(pk)
		if p.Enrolment {
			// The second factor a role required is set up: the sign-in
			// it interrupted finishes, the way it began.
			c, err := s.auth.FinishEnrolment(ctx, p, []string{auth.AMRPasskey}, meta(ctx))
			if err != nil {
				return nil, err
			}
			done := s.finishSignIn(c)
			out.SetCookie, out.Body.SignIn = done.SetCookie, &done.Body
		}
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "passkey-login-begin", Method: http.MethodPost, Path: "/v1/passkeys/login/begin", Tags: tags,
		Summary:     "Start signing in with a passkey",
		Description: "With no email (or an unknown one) the options are for a discoverable credential.",
		Errors:      []int{403, 429},
	}, func(ctx context.Context, in *loginBeginInput) (*beginOutput, error) {
		if err := s.auth.LimitIP(ctx, "passkey_login", meta(ctx)); err != nil {
			return nil, err
		}
		email := ""
		if in.Body != nil {
			email = in.Body.Email
		}
		if s.passkeys == nil {
			return nil, errNoPasskeys
		}
		opts, id, err := s.passkeys.BeginLogin(ctx, email)
		if err != nil {
			return nil, err
		}
		return beginAnswer(opts, id), nil
	})

	register(s, api, huma.Operation{
		OperationID: "passkey-login-finish", Method: http.MethodPost, Path: "/v1/passkeys/login/finish", Tags: tags,
		Summary:     "Finish signing in with a passkey",
		Description: "The body is the JSON of `credential.toJSON()`. Sets the session cookie; with `?tokens=true` the answer also carries an OAuth2 token response.",
		Errors:      []int{401, 403, 429},
	}, func(ctx context.Context, in *loginFinishInput) (*loginFinishOutput, error) {
		m := meta(ctx)
		if err := s.auth.LimitIP(ctx, "passkey_login", m); err != nil {
			return nil, err
		}
		if s.passkeys == nil {
			return nil, errNoPasskeys
		}
		f := auth.FinishSession
		if in.Tokens {
			f = auth.FinishBoth
		}
		a, err := s.passkeys.FinishLogin(ctx, in.Ceremony, rawJSON(in.Body), f, m)
		if err != nil {
			if auth.ErrorCode(err) == auth.EUNAUTHORIZED {
				return nil, huma.Error401Unauthorized(auth.ErrorMessage(err))
			}
			return nil, err
		}
		c, err := s.auth.Complete(ctx, a)
		if err != nil {
			return nil, err
		}
		out := &loginFinishOutput{SetCookie: s.sessionCookie(c.SessionToken, c.Session.ExpiresAt), CacheControl: "no-store"}
		out.Body.User = userView(c.User).Body
		out.Body.Session = sessionView(c.Session, c.Session.ID)
		if t := c.Tokens; t != nil {
			out.Body.AccessToken, out.Body.TokenType, out.Body.ExpiresIn = t.AccessToken, "Bearer", t.ExpiresIn
			out.Body.RefreshToken, out.Body.Scope = t.RefreshToken, strings.Join(t.Scope, " ")
		}
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "list-passkeys", Method: http.MethodGet, Path: "/v1/passkeys", Tags: tags,
		Summary: "Your passkeys", Security: secRead, Errors: []int{401, 403},
	}, func(ctx context.Context, _ *struct{}) (*passkeyListOutput, error) {
		p, err := require(ctx, "read")
		if err != nil {
			return nil, err
		}
		keys, err := s.auth.ListPasskeys(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		out := &passkeyListOutput{CacheControl: "no-store"}
		out.Body.Passkeys = make([]PasskeyBody, 0, len(keys))
		for _, k := range keys {
			out.Body.Passkeys = append(out.Body.Passkeys, passkeyView(k))
		}
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "rename-passkey", Method: http.MethodPatch, Path: "/v1/passkeys/{id}", Tags: tags,
		Summary: "Rename one of your passkeys", Security: secWrite, Errors: []int{401, 403, 404, 422},
	}, func(ctx context.Context, in *passkeyRenameInput) (*passkeyOutput, error) {
		p, err := require(ctx, "write")
		if err != nil {
			return nil, err
		}
		if err := s.auth.RenamePasskey(ctx, p.UserID, in.ID, in.Body.Name, meta(ctx)); err != nil {
			return nil, err
		}
		keys, err := s.auth.ListPasskeys(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if k.ID == in.ID {
				return &passkeyOutput{Body: passkeyView(k)}, nil
			}
		}
		return nil, auth.ErrNotFound
	})

	register(s, api, huma.Operation{
		OperationID: "delete-passkey", Method: http.MethodDelete, Path: "/v1/passkeys/{id}", Tags: tags,
		Summary: "Remove one of your passkeys", Description: "409 when it is the account's last way to sign in.",
		Security: secWrite, DefaultStatus: http.StatusNoContent, Errors: []int{401, 403, 404, 409},
	}, func(ctx context.Context, in *passkeyIDInput) (*struct{}, error) {
		p, err := require(ctx, "write")
		if err != nil {
			return nil, err
		}
		if err := s.auth.RemovePasskey(ctx, p, in.ID, meta(ctx)); err != nil {
			return nil, err
		}
		return nil, nil
	})
}

// rawJSON re-encodes a decoded credential for the WebAuthn parser.
func rawJSON(v map[string]any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// passkeyOwner is the caller adding a passkey and its account (read
// fresh), on a server where passkeys are on; whether that credential may
// add one is auth's decision (CanAddSignInMethod).
func (s *Server) passkeyOwner(ctx context.Context) (*auth.Principal, *auth.User, error) {
	u, err := s.currentUser(ctx, "write")
	if err != nil {
		return nil, nil, err
	}
	p, err := require(ctx)
	if err != nil {
		return nil, nil, err
	}
	if s.passkeys == nil {
		return nil, nil, errNoPasskeys
	}
	return p, u, nil
}

// beginAnswer is the answer of both begin calls.
func beginAnswer(opts json.RawMessage, ceremony string) *beginOutput {
	out := &beginOutput{CacheControl: "no-store"}
	out.Body.PublicKey, out.Body.Ceremony = opts, ceremony
	return out
}
