package webhook_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/providers/webhook"
)

// A receiver verifies each delivery before it reads the JSON.
func ExampleVerifyRequest() {
	const secret = "shared-secret"
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := webhook.VerifyRequest(r, secret, 1<<20)
		if err != nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		// To refuse replays, also remember r.Header.Get(webhook.HeaderSignature)
		// for webhook.DefaultTolerance; to drop retried events, the
		// X-Cutover-Delivery ID.
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		fmt.Println("got", p.Kind, "for", p.App, p.Version)
		w.WriteHeader(http.StatusNoContent)
	})

	// What Cutover sends.
	body := []byte(`{"app":"shop","version":"1.5.0","kind":"promoted","message":"release of shop ended: promoted","time":"2026-11-23T15:55:13Z"}`)
	ts := time.Now().Unix()
	req := httptest.NewRequest(http.MethodPost, "/cutover", strings.NewReader(string(body)))
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(secret, ts, body))
	rec := httptest.NewRecorder()
	receiver.ServeHTTP(rec, req)
	fmt.Println(rec.Code)

	// The same body with another signature.
	req = httptest.NewRequest(http.MethodPost, "/cutover", strings.NewReader(string(body)))
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(webhook.HeaderSignature, webhook.Sign("guessed", ts, body))
	rec = httptest.NewRecorder()
	receiver.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// got promoted for shop 1.5.0
	// 204
	// 401
}
