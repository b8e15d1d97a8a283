package core

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzParse checks the hand-written member scanner against encoding/json:
// for every valid JSON object, the members it extracts are the ones
// encoding/json decodes (exact names, last one wins), and nothing panics on
// any input.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"type":"ping"}`, `{"type":"ping","id":"a\"b"}`, ` { "id" : -1.5e3 , "type" : "x" } `,
		`{"type":"publish","channel":"c","data":{"a":[1,{"b":"}"}],"c":"\\"}}`,
		`{"type":"a","type":"b"}`, `{"t\u0079pe":"ping"}`, `{"TYPE":"ping"}`, `[1]`, `null`, `{"type":5}`,
		`{"channel":"caf\u00e9","type":"subscribe"}`, `{"data":null,"id":true}`, "{\"type\":\"\xff\"}", `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var in inbound
		err := parse(data, &in)
		var m map[string]json.RawMessage
		if json.Unmarshal(data, &m) != nil || m == nil {
			if err == nil {
				t.Fatalf("parse accepted %q, which is not a JSON object", data)
			}
			return
		}
		same := func(name string, got []byte) {
			want, ok := m[name]
			if !ok {
				if got != nil {
					t.Fatalf("%q: %s = %q, but there is no such member", data, name, got)
				}
				return
			}
			if !bytes.Equal(bytes.TrimSpace(want), got) {
				t.Fatalf("%q: %s = %q, want %q", data, name, got, want)
			}
		}
		if err != nil {
			return // a bad type, id or channel: checked by the table tests
		}
		same("type", in.Type)
		same("id", in.ID)
		same("data", in.Data)
		if raw, ok := m["channel"]; ok {
			var want string
			if json.Unmarshal(raw, &want) != nil || want != in.Channel {
				t.Fatalf("%q: channel %q, want %s", data, in.Channel, raw)
			}
		}
	})
}
