// Package password owns everything gatehouse does with user passwords:
//
//   - hashing new passwords with argon2id and encoding them as PHC strings
//     (Hasher.Hash);
//   - verifying passwords against stored hashes, argon2id with any sane
//     parameters or legacy bcrypt, and telling the caller when a stored hash
//     should be upgraded (Hasher.Verify);
//   - equalising the cost of logins for unknown accounts (Hasher.VerifyDummy);
//   - bounding how many hashes are computed at once, so that a burst of
//     logins degrades into fast "busy" errors instead of exhausting CPU and
//     memory (Limiter);
//   - the NIST SP 800-63B password policy for new passwords, including the
//     embedded list of common breached passwords (Policy, IsBreached).
//
// No other package should call argon2 or bcrypt directly, compare password
// hashes, or decide whether a password is acceptable.
//
// The decisions behind the defaults are recorded in
// docs/decisions-password.md.
package password
