package password

import "testing"

func TestDefaultParams(t *testing.T) {
	want := Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	if got := DefaultParams(); got != want {
		t.Fatalf("DefaultParams() = %+v, want %+v", got, want)
	}
	if err := DefaultParams().Validate(); err != nil {
		t.Fatalf("DefaultParams().Validate() = %v", err)
	}
}

func TestParamsValidate(t *testing.T) {
	ok := testParams()
	with := func(f func(*Params)) Params {
		p := ok
		f(&p)
		return p
	}
	tests := []struct {
		name    string
		p       Params
		wantErr bool
	}{
		{"test params", ok, false},
		{"defaults", DefaultParams(), false},
		{"minimum memory for p=1", with(func(p *Params) { p.Memory = 8 }), false},
		{"memory below 8*parallelism", with(func(p *Params) { p.Memory, p.Parallelism = 31, 4 }), true},
		{"memory exactly 8*parallelism", with(func(p *Params) { p.Memory, p.Parallelism = 32, 4 }), false},
		{"memory above 4GiB", with(func(p *Params) { p.Memory = 4<<20 + 1 }), true},
		{"zero iterations", with(func(p *Params) { p.Iterations = 0 }), true},
		{"too many iterations", with(func(p *Params) { p.Iterations = 101 }), true},
		{"zero parallelism", with(func(p *Params) { p.Parallelism = 0 }), true},
		{"key too short", with(func(p *Params) { p.KeyLen = 15 }), true},
		{"key minimum", with(func(p *Params) { p.KeyLen = 16 }), false},
		{"key too long", with(func(p *Params) { p.KeyLen = 257 }), true},
		{"salt too short", with(func(p *Params) { p.SaltLen = 7 }), true},
		{"salt minimum", with(func(p *Params) { p.SaltLen = 8 }), false},
		{"salt too long", with(func(p *Params) { p.SaltLen = 257 }), true},
		{"zero value", Params{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate(%+v) = %v, want error: %v", tt.p, err, tt.wantErr)
			}
		})
	}
}
