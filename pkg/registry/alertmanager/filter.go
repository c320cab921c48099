package alertmanager

import (
	"net/http"
	"strconv"
	"strings"

	"k8s.io/apiserver/pkg/endpoints/responsewriter"
)

// NotificationsPath is where Alertmanager posts its notifications.
const NotificationsPath = "/apis/signals.remediation.io/v1/alertmanagernotifications"

// WithNotificationMetrics counts every answer to a notification in
// signal_apiserver_alertmanager_notifications_total, by its HTTP status:
// wrapped around the whole handler chain, it also sees what is answered
// before the storage runs (401 and 403 of authentication and
// authorization, 429 of max-in-flight, 413 and 400 of the create handler,
// 500 of a recovered panic, 504 of the timeout filter).
func WithNotificationMetrics(handler http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || strings.TrimSuffix(req.URL.Path, "/") != NotificationsPath {
			handler.ServeHTTP(w, req)
			return
		}
		rec := &codeRecorder{ResponseWriter: w}
		handler.ServeHTTP(responsewriter.WrapForHTTP1Or2(rec), req)
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		notificationsTotal.WithLabelValues(strconv.Itoa(code)).Inc()
	})
}

// codeRecorder remembers the status code written.
type codeRecorder struct {
	http.ResponseWriter
	code int
}

var _ responsewriter.UserProvidedDecorator = &codeRecorder{}

func (c *codeRecorder) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *codeRecorder) Write(b []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	return c.ResponseWriter.Write(b)
}

func (c *codeRecorder) Unwrap() http.ResponseWriter { return c.ResponseWriter }
