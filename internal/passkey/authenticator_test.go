package passkey_test

// A test authenticator (standard library only), adapted from the acceptance
// suite's software authenticator, that plays the browser and a platform
// authenticator for the passkey tests: ECDSA P-256
// credentials (COSE alg -7), attestation format "none", and answers in the
// JSON form of PublicKeyCredential.toJSON() (WebAuthn Level 3
// RegistrationResponseJSON / AuthenticationResponseJSON), every binary field
// base64url without padding. A forge changes what it signs or says,
// so checks can send the responses an attacker would.
//
// This file depends on nothing else in the package's tests.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// Authenticator data flags (WebAuthn §6.1).
const (
	waFlagUP byte = 0x01 // user present
	waFlagUV byte = 0x04 // user verified
	waFlagBE byte = 0x08 // backup eligible
	waFlagBS byte = 0x10 // backed up
	waFlagAT byte = 0x40 // attested credential data included
	waFlagED byte = 0x80 // extension data included
)

// waAlgES256 is ECDSA with P-256 and SHA-256.
const waAlgES256 = -7

// testAuthenticator holds discoverable credentials for one browser origin.
type testAuthenticator struct {
	Origin         string // the page's origin, e.g. http://localhost:8080
	BackupEligible bool   // BE flag of new credentials
	BackupState    bool   // BS flag of new credentials
	ZeroCounter    bool   // always report signCount 0, as many synced passkeys do

	mu    sync.Mutex
	creds []*testCredential
}

// testCredential is one discoverable credential (a passkey).
type testCredential struct {
	ID         []byte
	Key        *ecdsa.PrivateKey
	RPID       string
	UserHandle []byte // user.id of the creation options
	UserName   string
	SignCount  uint32 // last counter value sent
	BE, BS     bool
}

// IDString is the credential id as the JSON carries it (base64url, no padding).
func (c *testCredential) IDString() string { return waB64(c.ID) }

// forge overrides what the authenticator (or the browser around it) would
// put in a response. The zero value forges nothing.
type forge struct {
	Origin       string            // clientDataJSON origin ("": the authenticator's)
	Type         string            // clientDataJSON type ("": webauthn.create / webauthn.get)
	Challenge    string            // clientDataJSON challenge ("": the options', re-encoded base64url)
	CrossOrigin  bool              // clientDataJSON crossOrigin
	RPID         string            // RP ID hashed into authData ("": the options' RP ID)
	RPIDHash     []byte            // raw rpIdHash (overrides RPID)
	Flags        *byte             // authData flags (nil: computed)
	ClearFlags   byte              // bits cleared from the computed flags
	SignCount    *uint32           // authData signCount (nil: 0 on registration, last+1 on login, or 0 with ZeroCounter)
	Signer       *ecdsa.PrivateKey // key that signs an assertion (nil: the credential's)
	Signature    []byte            // raw assertion signature (overrides Signer)
	UserHandle   []byte            // assertion userHandle (nil: the credential's)
	NoUserHandle bool              // leave userHandle out of an assertion
	CredentialID []byte            // registration: use this credential id (nil: 32 random bytes)
	Key          *ecdsa.PrivateKey // registration: use this key (nil: a new one)
}

// newTestAuthenticator returns an authenticator used from pages of origin.
// Its credentials are backup eligible and backed up, as synced passkeys are.
func newTestAuthenticator(origin string) *testAuthenticator {
	return &testAuthenticator{Origin: origin, BackupEligible: true, BackupState: true}
}

// Credentials returns the credentials made so far, oldest first.
func (a *testAuthenticator) Credentials() []*testCredential {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*testCredential(nil), a.creds...)
}

// Add stores a credential (for instance one copied from another authenticator).
func (a *testAuthenticator) Add(c *testCredential) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.creds = append(a.creds, c)
}

// waPublicKeyOptions returns the value of "publicKey" when opts is the whole
// {"publicKey": …} answer of a begin call, else opts itself.
func waPublicKeyOptions(opts map[string]any) map[string]any {
	if pk, ok := opts["publicKey"].(map[string]any); ok {
		return pk
	}
	return opts
}

// waOriginHost returns the host (without port) of an origin.
func waOriginHost(origin string) string {
	u, err := url.Parse(origin)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// waRPIDAllowed reports whether rpID may be used from a page whose host is host
// (equal, or a registrable suffix of it).
func waRPIDAllowed(rpID, host string) bool {
	rpID, host = strings.ToLower(rpID), strings.ToLower(host)
	return rpID != "" && (rpID == host || strings.HasSuffix(host, "."+rpID))
}

// Register answers creation options (the {"publicKey": …} answer of a begin
// call, or its "publicKey" value) as navigator.credentials.create() and
// toJSON() would. The new credential is kept by the authenticator and also
// returned. f may be nil.
func (a *testAuthenticator) Register(options map[string]any, f *forge) (map[string]any, *testCredential, error) {
	if f == nil {
		f = &forge{}
	}
	pk := waPublicKeyOptions(options)
	if pk == nil {
		return nil, nil, errors.New("no creation options")
	}
	challenge, ok := pk["challenge"].(string)
	if !ok || challenge == "" {
		return nil, nil, errors.New(`creation options without a "challenge" string`)
	}
	rp, _ := pk["rp"].(map[string]any)
	rpID, _ := rp["id"].(string)
	host := waOriginHost(a.Origin)
	if rpID == "" {
		rpID = host
	}
	if !waRPIDAllowed(rpID, host) {
		return nil, nil, fmt.Errorf("SecurityError: rp.id %q is not valid for origin %s", rpID, a.Origin)
	}
	user, _ := pk["user"].(map[string]any)
	uid, _ := user["id"].(string)
	if uid == "" {
		return nil, nil, errors.New(`creation options without a "user.id" string`)
	}
	handle, err := waB64Dec(uid)
	if err != nil {
		return nil, nil, fmt.Errorf("user.id %q is not base64url: %v", uid, err)
	}
	if params, ok := pk["pubKeyCredParams"].([]any); ok && len(params) > 0 {
		found := false
		for _, p := range params {
			m, _ := p.(map[string]any)
			if alg, ok := m["alg"].(float64); ok && int(alg) == waAlgES256 {
				found = true
			}
		}
		if !found {
			return nil, nil, fmt.Errorf("NotSupportedError: pubKeyCredParams %v do not include ES256 (alg -7)", params)
		}
	}
	userName, _ := user["name"].(string)

	key := f.Key
	if key == nil {
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, nil, err
		}
	}
	credID := f.CredentialID
	if credID == nil {
		credID = make([]byte, 32)
		if _, err := rand.Read(credID); err != nil {
			return nil, nil, err
		}
	}
	cred := &testCredential{ID: credID, Key: key, RPID: rpID, UserHandle: handle, UserName: userName,
		BE: a.BackupEligible, BS: a.BackupState}

	clientData, err := a.clientData("webauthn.create", challenge, f)
	if err != nil {
		return nil, nil, err
	}
	coseKey, err := waCOSEKeyES256(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	var attested bytes.Buffer
	attested.Write(make([]byte, 16)) // AAGUID: none
	binary.Write(&attested, binary.BigEndian, uint16(len(credID)))
	attested.Write(credID)
	attested.Write(coseKey)

	flags := waFlagUP | waFlagUV | waFlagAT
	var count uint32
	authData := waAuthData(rpID, flags, count, cred, f)
	authData = append(authData, attested.Bytes()...)

	attObj := waCBOREncode(waCBORMap{
		{"fmt", "none"},
		{"attStmt", waCBORMap{}},
		{"authData", authData},
	})
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	ext := map[string]any{}
	if exts, ok := pk["extensions"].(map[string]any); ok {
		if v, ok := exts["credProps"].(bool); ok && v {
			ext["credProps"] = map[string]any{"rk": true}
		}
	}
	resp := map[string]any{
		"id":    waB64(credID),
		"rawId": waB64(credID),
		"type":  "public-key",
		"response": map[string]any{
			"clientDataJSON":     waB64(clientData),
			"attestationObject":  waB64(attObj),
			"authenticatorData":  waB64(authData),
			"transports":         []string{"hybrid", "internal"},
			"publicKeyAlgorithm": waAlgES256,
			"publicKey":          waB64(spki),
		},
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  ext,
	}
	a.Add(cred)
	return resp, cred, nil
}

// Assert answers request options (the {"publicKey": …} answer of a begin call,
// or its "publicKey" value) as navigator.credentials.get() and toJSON() would,
// with cred, or when cred is nil with the newest credential for the RP ID
// that allowCredentials (when not empty) names. A cred given explicitly is
// used even if allowCredentials leaves it out, as a forged client could. f may
// be nil.
func (a *testAuthenticator) Assert(options map[string]any, cred *testCredential, f *forge) (map[string]any, error) {
	if f == nil {
		f = &forge{}
	}
	pk := waPublicKeyOptions(options)
	if pk == nil {
		return nil, errors.New("no request options")
	}
	challenge, ok := pk["challenge"].(string)
	if !ok || challenge == "" {
		return nil, errors.New(`request options without a "challenge" string`)
	}
	host := waOriginHost(a.Origin)
	rpID, _ := pk["rpId"].(string)
	if rpID == "" {
		rpID = host
	}
	if !waRPIDAllowed(rpID, host) {
		return nil, fmt.Errorf("SecurityError: rpId %q is not valid for origin %s", rpID, a.Origin)
	}
	if cred == nil {
		allowed := map[string]bool{}
		if list, ok := pk["allowCredentials"].([]any); ok {
			for _, e := range list {
				m, _ := e.(map[string]any)
				if id, ok := m["id"].(string); ok {
					if raw, err := waB64Dec(id); err == nil {
						allowed[string(raw)] = true
					}
				}
			}
		}
		creds := a.Credentials()
		for i := len(creds) - 1; i >= 0; i-- {
			c := creds[i]
			if c.RPID == rpID && (len(allowed) == 0 || allowed[string(c.ID)]) {
				cred = c
				break
			}
		}
		if cred == nil {
			return nil, fmt.Errorf("NotAllowedError: no credential for RP ID %q among %d (allowCredentials: %d)", rpID, len(creds), len(allowed))
		}
	}

	clientData, err := a.clientData("webauthn.get", challenge, f)
	if err != nil {
		return nil, err
	}
	flags := waFlagUP | waFlagUV
	a.mu.Lock()
	count := cred.SignCount + 1
	if a.ZeroCounter {
		count = 0
	}
	if f.SignCount != nil {
		count = *f.SignCount
	}
	if count > cred.SignCount {
		cred.SignCount = count
	}
	a.mu.Unlock()
	authData := waAuthData(rpID, flags, count, cred, f)

	cdHash := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(append([]byte(nil), authData...), cdHash[:]...))
	sig := f.Signature
	if sig == nil {
		signer := cred.Key
		if f.Signer != nil {
			signer = f.Signer
		}
		if sig, err = ecdsa.SignASN1(rand.Reader, signer, digest[:]); err != nil {
			return nil, err
		}
	}
	response := map[string]any{
		"clientDataJSON":    waB64(clientData),
		"authenticatorData": waB64(authData),
		"signature":         waB64(sig),
	}
	handle := cred.UserHandle
	if f.UserHandle != nil {
		handle = f.UserHandle
	}
	if !f.NoUserHandle && handle != nil {
		response["userHandle"] = waB64(handle)
	}
	return map[string]any{
		"id":                      waB64(cred.ID),
		"rawId":                   waB64(cred.ID),
		"type":                    "public-key",
		"response":                response,
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  map[string]any{},
	}, nil
}

// clientData builds the clientDataJSON a browser would (members in the
// order browsers write them).
func (a *testAuthenticator) clientData(typ, optChallenge string, f *forge) ([]byte, error) {
	challenge := f.Challenge
	if challenge == "" {
		raw, err := waB64Dec(optChallenge)
		if err != nil {
			return nil, fmt.Errorf("challenge %q is not base64url: %v", optChallenge, err)
		}
		challenge = waB64(raw)
	}
	if f.Type != "" {
		typ = f.Type
	}
	origin := a.Origin
	if f.Origin != "" {
		origin = f.Origin
	}
	return json.Marshal(struct {
		Type        string `json:"type"`
		Challenge   string `json:"challenge"`
		Origin      string `json:"origin"`
		CrossOrigin bool   `json:"crossOrigin"`
	}{typ, challenge, origin, f.CrossOrigin})
}

// waAuthData returns rpIdHash | flags | signCount (37 bytes), forged as f says.
func waAuthData(rpID string, flags byte, count uint32, cred *testCredential, f *forge) []byte {
	if f.RPID != "" {
		rpID = f.RPID
	}
	h := sha256.Sum256([]byte(rpID))
	rpHash := h[:]
	if f.RPIDHash != nil {
		rpHash = f.RPIDHash
	}
	if cred.BE {
		flags |= waFlagBE
	}
	if cred.BS {
		flags |= waFlagBS
	}
	flags &^= f.ClearFlags
	if f.Flags != nil {
		flags = *f.Flags
	}
	if f.SignCount != nil {
		count = *f.SignCount
	}
	out := append([]byte(nil), rpHash...)
	out = append(out, flags)
	return binary.BigEndian.AppendUint32(out, count)
}

// waCOSEKeyES256 encodes an EC2 P-256 public key as a COSE_Key.
func waCOSEKeyES256(pub *ecdsa.PublicKey) ([]byte, error) {
	pt, err := pub.Bytes() // 0x04 | X | Y
	if err != nil {
		return nil, err
	}
	if len(pt) != 65 || pt[0] != 4 {
		return nil, fmt.Errorf("unexpected P-256 point encoding (%d bytes)", len(pt))
	}
	return waCBOREncode(waCBORMap{
		{1, 2},          // kty: EC2
		{3, waAlgES256}, // alg: ES256
		{-1, 1},         // crv: P-256
		{-2, pt[1:33]},  // x
		{-3, pt[33:65]}, // y
	}), nil
}

// ---------------------------------------------------------------------------
// Base64url.

func waB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// waB64Dec decodes base64url with or without padding (and, leniently, standard
// base64), as browsers' parse…FromJSON accept what servers send.
func waB64Dec(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// ---------------------------------------------------------------------------
// A minimal CBOR encoder (RFC 8949): unsigned and negative integers, byte
// strings, text strings, arrays and maps with integer or text keys, the maps
// sorted in CTAP2 canonical order (shorter encoded key first, then bytewise).

// waCBORMap is a CBOR map; its entries are sorted when encoded.
type waCBORMap []waCBOREntry

type waCBOREntry struct {
	Key   any // int or string
	Value any
}

func waCBOREncode(v any) []byte {
	var b bytes.Buffer
	waCBORWrite(&b, v)
	return b.Bytes()
}

func waCBORHead(b *bytes.Buffer, major byte, n uint64) {
	m := major << 5
	switch {
	case n < 24:
		b.WriteByte(m | byte(n))
	case n <= 0xff:
		b.WriteByte(m | 24)
		b.WriteByte(byte(n))
	case n <= 0xffff:
		b.WriteByte(m | 25)
		binary.Write(b, binary.BigEndian, uint16(n))
	case n <= 0xffffffff:
		b.WriteByte(m | 26)
		binary.Write(b, binary.BigEndian, uint32(n))
	default:
		b.WriteByte(m | 27)
		binary.Write(b, binary.BigEndian, n)
	}
}

func waCBORWrite(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case int:
		waCBORInt(b, int64(x))
	case int64:
		waCBORInt(b, x)
	case uint32:
		waCBORHead(b, 0, uint64(x))
	case []byte:
		waCBORHead(b, 2, uint64(len(x)))
		b.Write(x)
	case string:
		waCBORHead(b, 3, uint64(len(x)))
		b.WriteString(x)
	case []any:
		waCBORHead(b, 4, uint64(len(x)))
		for _, e := range x {
			waCBORWrite(b, e)
		}
	case waCBORMap:
		type enc struct{ k, v []byte }
		entries := make([]enc, 0, len(x))
		for _, e := range x {
			entries = append(entries, enc{waCBOREncode(e.Key), waCBOREncode(e.Value)})
		}
		sort.Slice(entries, func(i, j int) bool {
			if len(entries[i].k) != len(entries[j].k) {
				return len(entries[i].k) < len(entries[j].k)
			}
			return bytes.Compare(entries[i].k, entries[j].k) < 0
		})
		waCBORHead(b, 5, uint64(len(entries)))
		for _, e := range entries {
			b.Write(e.k)
			b.Write(e.v)
		}
	default:
		panic(fmt.Sprintf("cbor: unsupported type %T", v))
	}
}

func waCBORInt(b *bytes.Buffer, n int64) {
	if n >= 0 {
		waCBORHead(b, 0, uint64(n))
		return
	}
	waCBORHead(b, 1, uint64(-1-n))
}
