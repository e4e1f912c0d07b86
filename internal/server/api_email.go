package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"gatehouse/internal/auth"
)

type forgotInput struct {
	Body struct {
		Email string `json:"email" maxLength:"320" doc:"The account's email address"`
	}
}

type acceptedOutput struct {
	Body struct {
		Status string `json:"status"`
	}
}

type resetInput struct {
	Body struct {
		Token       string `json:"token" maxLength:"256"`
		NewPassword string `json:"new_password" maxLength:"1024"`
	}
}

type verifyInput struct {
	Body struct {
		Token string `json:"token" maxLength:"256"`
	}
}

// forgotAnswer is the one body of POST /v1/password/forgot, whether or not
// the account exists.
const forgotAnswer = "if an account uses this address, a reset link is on its way"

func (s *Server) registerEmailRoutes(api huma.API) {
	register(s, api, huma.Operation{
		OperationID: "password-forgot", Method: http.MethodPost, Path: "/v1/password/forgot", Tags: []string{"email"},
		Summary:       "Ask for a password-reset mail",
		Description:   "Always 202 with the same body, in the same time, whether or not an account has the address.",
		DefaultStatus: http.StatusAccepted, Errors: []int{400, 422, 429},
	}, func(ctx context.Context, in *forgotInput) (*acceptedOutput, error) {
		if err := s.auth.RequestPasswordReset(ctx, in.Body.Email, meta(ctx)); err != nil {
			return nil, err
		}
		out := &acceptedOutput{}
		out.Body.Status = forgotAnswer
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "password-reset", Method: http.MethodPost, Path: "/v1/password/reset", Tags: []string{"email"},
		Summary:       "Set a new password with a mailed reset token",
		Description:   "Ends every session and refresh token of the user, marks the email verified and lifts a lockout. An invalid, used or expired token gets 400.",
		DefaultStatus: http.StatusNoContent, Errors: []int{400, 422, 429, 503},
	}, func(ctx context.Context, in *resetInput) (*struct{}, error) {
		if err := s.auth.ResetPassword(ctx, in.Body.Token, in.Body.NewPassword, meta(ctx)); err != nil {
			return nil, s.tokenError(ctx, err)
		}
		return nil, nil
	})

	register(s, api, huma.Operation{
		OperationID: "email-verify", Method: http.MethodPost, Path: "/v1/email/verify", Tags: []string{"email"},
		Summary: "Verify the email address with a mailed token", DefaultStatus: http.StatusNoContent, Errors: []int{400, 422},
	}, func(ctx context.Context, in *verifyInput) (*struct{}, error) {
		if err := s.auth.VerifyEmail(ctx, in.Body.Token, credentialOwner(ctx), meta(ctx)); err != nil {
			return nil, s.tokenError(ctx, err)
		}
		return nil, nil
	})

	register(s, api, huma.Operation{
		OperationID: "email-verify-resend", Method: http.MethodPost, Path: "/v1/email/verify/resend", Tags: []string{"email"},
		Summary: "Send the verification mail again", Security: secWrite,
		DefaultStatus: http.StatusAccepted, Errors: []int{401, 403, 429},
	}, func(ctx context.Context, _ *struct{}) (*acceptedOutput, error) {
		u, err := s.currentUser(ctx, "write")
		if err != nil {
			return nil, err
		}
		if err := s.auth.ResendVerification(ctx, u.ID, meta(ctx)); err != nil {
			return nil, err
		}
		out := &acceptedOutput{}
		out.Body.Status = "a verification mail is on its way unless the address is already verified"
		return out, nil
	})
}

// tokenError answers a bad reset or verification token with 400 and one
// generic message (SPEC §5), other errors as usual.
func (s *Server) tokenError(ctx context.Context, err error) error {
	if errors.Is(err, auth.ErrInvalidOneTimeToken) {
		return huma.Error400BadRequest("the token is invalid, used or expired")
	}
	return err
}
