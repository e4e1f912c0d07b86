package server

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"gatehouse/internal/auth"
)

// Two-factor authentication (SPEC §13): enrolment, the second step of a
// sign-in, step-up and the admin reset. The decisions are auth's; these
// handlers only translate.

// mfaCookie carries the mfa_token of a hosted-page sign-in (SPEC §13).
const mfaCookie = "gatehouse_mfa"

type mfaStatusOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		TOTP *struct {
			CreatedAt  time.Time  `json:"created_at"`
			LastUsedAt *time.Time `json:"last_used_at"`
		} `json:"totp" doc:"null when no TOTP authenticator is confirmed"`
		RecoveryCodes *struct {
			Total     int       `json:"total"`
			Remaining int       `json:"remaining"`
			CreatedAt time.Time `json:"created_at"`
		} `json:"recovery_codes" doc:"counts only: the codes are shown once"`
		Passkeys int  `json:"passkeys"`
		Required bool `json:"required" doc:"a role of GATEHOUSE_MFA_REQUIRED_ROLES requires a second factor"`
	}
}

type totpBeginOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		EnrollmentID string    `json:"enrollment_id"`
		Secret       string    `json:"secret" doc:"base32, 20 random bytes"`
		OTPAuthURI   string    `json:"otpauth_uri"`
		QRSVG        string    `json:"qr_svg" doc:"the otpauth URI as an inline SVG QR code"`
		ExpiresAt    time.Time `json:"expires_at" doc:"the enrolment lapses unconfirmed after 10 minutes"`
	}
}

type totpConfirmInput struct {
	Body struct {
		EnrollmentID string `json:"enrollment_id" maxLength:"64"`
		Code         string `json:"code" maxLength:"16"`
	}
}

// signInBody is the answer of a finished sign-in: the session (cookie
// start) or the OAuth2 token response (token start), or both.
type signInBody struct {
	RecoveryCodes []string     `json:"recovery_codes,omitempty" doc:"an enrolment at sign-in: the new recovery codes, shown once"`
	User          *UserBody    `json:"user,omitempty"`
	Session       *SessionBody `json:"session,omitempty"`
	AccessToken   string       `json:"access_token,omitempty"`
	TokenType     string       `json:"token_type,omitempty"`
	ExpiresIn     int          `json:"expires_in,omitempty"`
	RefreshToken  string       `json:"refresh_token,omitempty"`
	Scope         string       `json:"scope,omitempty"`
}

type signInOutput struct {
	Status       int
	SetCookie    string `header:"Set-Cookie"`
	CacheControl string `header:"Cache-Control"`
	Pragma       string `header:"Pragma"`
	Body         signInBody
}

type recoveryCodesOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		RecoveryCodes []string `json:"recovery_codes" doc:"shown once"`
	}
}

type mfaVerifyInput struct {
	Tokens     bool   `query:"tokens" doc:"Finish with an OAuth2 token response whatever the start"`
	Cookie     string `cookie:"gatehouse_mfa" doc:"the hosted page's challenge, when the body has none"`
	HostCookie string `cookie:"__Host-gatehouse_mfa" doc:"the same, on https"`
	Body       struct {
		MFAToken     string `json:"mfa_token,omitempty" maxLength:"128"`
		Code         string `json:"code,omitempty" maxLength:"16" doc:"the 6-digit TOTP code"`
		RecoveryCode string `json:"recovery_code,omitempty" maxLength:"64"`
	}
}

type mfaPasskeyBeginInput struct {
	Cookie     string `cookie:"gatehouse_mfa"`
	HostCookie string `cookie:"__Host-gatehouse_mfa"`
	Body       *struct {
		MFAToken string `json:"mfa_token,omitempty" maxLength:"128"`
	}
}

type mfaPasskeyFinishInput struct {
	Ceremony   string         `query:"ceremony" maxLength:"128"`
	Tokens     bool           `query:"tokens"`
	Cookie     string         `cookie:"gatehouse_mfa"`
	HostCookie string         `cookie:"__Host-gatehouse_mfa"`
	Body       map[string]any `doc:"credential.toJSON()"`
}

type stepUpInput struct {
	Body struct {
		Password     string `json:"password,omitempty" maxLength:"1024"`
		Code         string `json:"code,omitempty" maxLength:"16"`
		RecoveryCode string `json:"recovery_code,omitempty" maxLength:"64"`
	}
}

type adminMFAResetInput struct {
	ID       string `path:"id" maxLength:"64"`
	Passkeys bool   `query:"passkeys" doc:"remove the user's passkeys too"`
}

// finishSignIn turns a completed sign-in into the answer: 201 with the
// cookie for a session, 200 with the token response otherwise.
func (s *Server) finishSignIn(c *auth.Completion) *signInOutput {
	out := &signInOutput{Status: http.StatusOK, CacheControl: "no-store", Pragma: "no-cache"}
	if c.Session != nil {
		ck := s.sessionCookie(c.SessionToken, c.Session.ExpiresAt)
		out.Status, out.SetCookie = http.StatusCreated, ck.String()
		u := userView(c.User).Body
		sv := sessionView(c.Session, c.Session.ID)
		out.Body.User, out.Body.Session = &u, &sv
	}
	if t := c.Tokens; t != nil {
		out.Body.AccessToken, out.Body.TokenType, out.Body.ExpiresIn = t.AccessToken, "Bearer", t.ExpiresIn
		out.Body.RefreshToken, out.Body.Scope = t.RefreshToken, strings.Join(t.Scope, " ")
	}
	return out
}

// mfaTokenOf picks the challenge from the body, else the hosted page's
// cookie.
func mfaTokenOf(body, cookie string) string {
	if body != "" {
		return body
	}
	return cookie
}

// passkeyBind is what a second-factor passkey ceremony is bound to: the
// challenge (by its hash), or the signed-in caller it steps up.
func passkeyBind(tok string, p *auth.Principal) string {
	if tok != "" {
		return "mfa:" + auth.MFAChallengeHash(tok)
	}
	return "up:" + p.UserID + ":" + p.Kind + ":" + p.SessionID
}

func (s *Server) registerMFARoutes(api huma.API) {
	tags := []string{"two-factor"}
	register(s, api, huma.Operation{
		OperationID: "mfa-status", Method: http.MethodGet, Path: "/v1/mfa", Tags: tags,
		Summary: "Your second factors", Security: secRead, Errors: []int{401, 403},
	}, func(ctx context.Context, _ *struct{}) (*mfaStatusOutput, error) {
		p, err := require(ctx, "read")
		if err != nil {
			return nil, err
		}
		st, err := s.auth.MFAStatus(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		out := &mfaStatusOutput{CacheControl: "no-store"}
		if t := st.TOTP; t != nil {
			out.Body.TOTP = &struct {
				CreatedAt  time.Time  `json:"created_at"`
				LastUsedAt *time.Time `json:"last_used_at"`
			}{CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt}
			if t.ConfirmedAt != nil {
				out.Body.TOTP.CreatedAt = *t.ConfirmedAt
			}
		}
		if rc := st.Recovery; rc != nil {
			out.Body.RecoveryCodes = &struct {
				Total     int       `json:"total"`
				Remaining int       `json:"remaining"`
				CreatedAt time.Time `json:"created_at"`
			}{rc.Total, rc.Remaining, rc.CreatedAt}
		}
		out.Body.Passkeys, out.Body.Required = st.Passkeys, st.Required
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "mfa-totp-begin", Method: http.MethodPost, Path: "/v1/mfa/totp", Tags: tags,
		Summary:     "Start setting up a TOTP authenticator",
		Description: "Answers the secret, its otpauth URI and a QR code, once. Pending until confirmed; a new call replaces it. Needs step-up when MFA is on; an enrolment-only `mfa_token` (Bearer ghm_…) is accepted.",
		Security:    secWrite, DefaultStatus: http.StatusCreated, Errors: []int{401, 403, 409},
	}, func(ctx context.Context, _ *struct{}) (*totpBeginOutput, error) {
		p, err := require(ctx, "write")
		if err != nil {
			return nil, err
		}
		e, err := s.auth.BeginTOTP(ctx, p, meta(ctx))
		if err != nil {
			return nil, err
		}
		svg, err := qrSVG(e.URI)
		if err != nil {
			return nil, err
		}
		out := &totpBeginOutput{CacheControl: "no-store"}
		out.Body.EnrollmentID, out.Body.Secret, out.Body.OTPAuthURI, out.Body.QRSVG, out.Body.ExpiresAt = e.ID, e.Secret, e.URI, svg, e.ExpiresAt
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "mfa-totp-confirm", Method: http.MethodPost, Path: "/v1/mfa/totp/confirm", Tags: tags,
		Summary:     "Confirm the TOTP authenticator with a code",
		Description: "Answers the recovery codes, once. Every other aal1 session and refresh family of the user ends. With an enrolment-only `mfa_token` the sign-in finishes too (cookie or token response, as it began).",
		Security:    secWrite, Errors: []int{400, 401, 403, 404, 409},
	}, func(ctx context.Context, in *totpConfirmInput) (*signInOutput, error) {
		p, err := require(ctx, "write")
		if err != nil {
			return nil, err
		}
		c, err := s.auth.ConfirmTOTP(ctx, p, in.Body.EnrollmentID, in.Body.Code, meta(ctx))
		if err != nil {
			return nil, err
		}
		out := &signInOutput{Status: http.StatusOK, CacheControl: "no-store", Pragma: "no-cache"}
		if c.Completion != nil {
			out = s.finishSignIn(c.Completion)
			out.Status = http.StatusOK
		}
		out.Body.RecoveryCodes = c.RecoveryCodes
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "mfa-totp-delete", Method: http.MethodDelete, Path: "/v1/mfa/totp", Tags: tags,
		Summary:     "Remove the TOTP authenticator",
		Description: "With no passkey left, the recovery codes go too. Needs step-up.",
		Security:    secWrite, DefaultStatus: http.StatusNoContent, Errors: []int{401, 403, 404},
	}, func(ctx context.Context, _ *struct{}) (*struct{}, error) {
		p, err := require(ctx, "write")
		if err != nil {
			return nil, err
		}
		return nil, s.auth.RemoveTOTP(ctx, p, meta(ctx))
	})

	register(s, api, huma.Operation{
		OperationID: "mfa-recovery-codes", Method: http.MethodPost, Path: "/v1/mfa/recovery-codes", Tags: tags,
		Summary: "Replace your recovery codes", Description: "The old set stops working. Needs step-up.",
		Security: secWrite, Errors: []int{401, 403, 409},
	}, func(ctx context.Context, _ *struct{}) (*recoveryCodesOutput, error) {
		p, err := require(ctx, "write")
		if err != nil {
			return nil, err
		}
		codes, err := s.auth.RegenerateRecoveryCodes(ctx, p, meta(ctx))
		if err != nil {
			return nil, err
		}
		out := &recoveryCodesOutput{CacheControl: "no-store"}
		out.Body.RecoveryCodes = codes
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "mfa-verify", Method: http.MethodPost, Path: "/v1/mfa/verify", Tags: tags,
		Summary:     "Finish a sign-in with the second factor",
		Description: "`{mfa_token, code}` or `{mfa_token, recovery_code}`. Finishes the way the sign-in began: 201 with the session cookie, or 200 with the token response (also with `?tokens=true`). A wrong code: 400 `mfa_invalid_code` with `attempts_remaining`.",
		Errors:      []int{400, 429},
	}, func(ctx context.Context, in *mfaVerifyInput) (*signInOutput, error) {
		f := auth.SecondFactor{Code: in.Body.Code, RecoveryCode: in.Body.RecoveryCode}
		if in.Tokens {
			f.Finish = auth.FinishTokens
		}
		c, err := s.auth.VerifyMFA(ctx, mfaTokenOf(in.Body.MFAToken, s.pickMFACookie(in.Cookie, in.HostCookie)), f, meta(ctx))
		if err != nil {
			return nil, err
		}
		return s.finishSignIn(c), nil
	})

	register(s, api, huma.Operation{
		OperationID: "mfa-passkey-begin", Method: http.MethodPost, Path: "/v1/mfa/passkey/begin", Tags: tags,
		Summary:     "Start a passkey as the second factor",
		Description: "With `{mfa_token}`: the second step of a sign-in. Without, for a signed-in caller: a step-up.",
		Errors:      []int{400, 401},
	}, func(ctx context.Context, in *mfaPasskeyBeginInput) (*beginOutput, error) {
		if s.passkeys == nil {
			return nil, errNoPasskeys
		}
		tok := s.pickMFACookie(in.Cookie, in.HostCookie)
		if in.Body != nil && in.Body.MFAToken != "" {
			tok = in.Body.MFAToken
		}
		var p *auth.Principal
		if tok == "" {
			var err error
			if p, err = require(ctx); err != nil {
				return nil, err
			}
		}
		u, keys, err := s.auth.MFAPasskeyTarget(ctx, tok, p)
		if err != nil {
			return nil, err
		}
		opts, id, err := s.passkeys.BeginSecondFactor(ctx, u, keys, passkeyBind(tok, p))
		if err != nil {
			return nil, err
		}
		return beginAnswer(opts, id), nil
	})

	register(s, api, huma.Operation{
		OperationID: "mfa-passkey-finish", Method: http.MethodPost, Path: "/v1/mfa/passkey/finish", Tags: tags,
		Summary:     "Finish a passkey second factor",
		Description: "The body is `credential.toJSON()`. Answers as `/v1/mfa/verify`, or as `/v1/mfa/step-up` for a step-up.",
		Errors:      []int{400, 401},
	}, func(ctx context.Context, in *mfaPasskeyFinishInput) (*signInOutput, error) {
		if s.passkeys == nil {
			return nil, errNoPasskeys
		}
		m := meta(ctx)
		uid, uv, bind, err := s.passkeys.FinishSecondFactor(ctx, in.Ceremony, rawJSON(in.Body), m)
		if err != nil {
			return nil, err
		}
		f := auth.SecondFactor{PasskeyUserID: uid, PasskeyUV: uv}
		// The ceremony says what it was begun for: a challenge, or a
		// step-up of the caller, who must be the same one now.
		if hash, ok := strings.CutPrefix(bind, "mfa:"); ok {
			if in.Tokens {
				f.Finish = auth.FinishTokens
			}
			c, err := s.auth.VerifyMFAByHash(ctx, hash, f, m)
			if err != nil {
				return nil, err
			}
			return s.finishSignIn(c), nil
		}
		res, _ := ctx.Value(keyPrincipal).(*authResult)
		if res == nil || res.p == nil || res.p.Enrolment || passkeyBind("", res.p) != bind {
			return nil, auth.ErrPasskeyLogin
		}
		t, err := s.auth.StepUp(ctx, res.p, auth.StepUpInput{Factor: f}, m)
		if err != nil {
			return nil, err
		}
		return s.stepUpAnswer(t), nil
	})

	register(s, api, huma.Operation{
		OperationID: "mfa-step-up", Method: http.MethodPost, Path: "/v1/mfa/step-up", Tags: tags,
		Summary:     "Confirm a sensitive action with a fresh authentication",
		Description: "`{password?, code | recovery_code}`: a user with a second factor needs it; one without uses the password. A cookie session is renewed (204); a bearer token gets a fresh access token (200).",
		Security:    secRead, Errors: []int{400, 401, 403, 429},
	}, func(ctx context.Context, in *stepUpInput) (*signInOutput, error) {
		p, err := require(ctx)
		if err != nil {
			return nil, err
		}
		t, err := s.auth.StepUp(ctx, p, auth.StepUpInput{Password: in.Body.Password,
			Factor: auth.SecondFactor{Code: in.Body.Code, RecoveryCode: in.Body.RecoveryCode}}, meta(ctx))
		if err != nil {
			return nil, err
		}
		return s.stepUpAnswer(t), nil
	})

	register(s, api, huma.Operation{
		OperationID: "admin-reset-mfa", Method: http.MethodDelete, Path: "/v1/admin/users/{id}/mfa", Tags: []string{"admin"},
		Summary:     "Reset a user's second factors",
		Description: "Removes TOTP and recovery codes (passkeys too with `?passkeys=true`), ends every session and refresh family of the user and mails them a notice.",
		Security:    secAdmin, DefaultStatus: http.StatusNoContent, Errors: []int{401, 403, 404},
	}, func(ctx context.Context, in *adminMFAResetInput) (*struct{}, error) {
		p, err := require(ctx, "admin")
		if err != nil {
			return nil, err
		}
		return nil, s.auth.AdminResetMFA(ctx, p, in.ID, in.Passkeys, meta(ctx))
	})
}

// stepUpAnswer is 204 for a session, 200 with a fresh access token for a
// bearer.
func (s *Server) stepUpAnswer(t *auth.TokenResponse) *signInOutput {
	out := &signInOutput{Status: http.StatusNoContent, CacheControl: "no-store"}
	if t != nil {
		out.Status, out.Pragma = http.StatusOK, "no-cache"
		out.Body.AccessToken, out.Body.TokenType, out.Body.ExpiresIn, out.Body.Scope = t.AccessToken, "Bearer", t.ExpiresIn, strings.Join(t.Scope, " ")
	}
	return out
}
