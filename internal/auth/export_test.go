package auth

import "context"

// SignInForTest completes a sign-in of u as if a password had been checked,
// for tests that need a session or a token family of a given account.
func (s *Service) SignInForTest(ctx context.Context, u *User, f Finish, m Meta) (*Completion, error) {
	return s.Complete(ctx, s.authentication(u, f, m, AMRPassword))
}
