package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// pageNames are the templates under templates/ besides layout.html.
var pageNames = []string{"home", "error", "me", "print", "register", "ops", "apply", "audit", "record", "gdpr", "signedin"}

// view is what every page template receives.
type view struct {
	Lang, Title, Path string
	Langs             []string
	Role, User        string
	CSRF              string
	Error, Notice     string // message keys
	Detail            string // the API's own words, after Error
	Reason            string
	Data              any
}

func (c *Console) parseTemplates() error {
	c.pages = map[string]map[string]*template.Template{}
	for _, lang := range languages {
		c.pages[lang] = map[string]*template.Template{}
		funcs := c.funcs(lang)
		for _, p := range pageNames {
			t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+p+".html")
			if err != nil {
				return fmt.Errorf("console: template %s: %w", p, err)
			}
			c.pages[lang][p] = t
		}
	}
	return nil
}

func (c *Console) funcs(lang string) template.FuncMap {
	return template.FuncMap{
		"t":       func(key string) string { return translate(lang, key) },
		"purpose": func(code string) string { return purposeName(lang, code) },
		"date": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"day": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02")
		},
		"name": func(id string) string {
			if p, ok := c.cfg.Directory.Participant(id); ok && p.Name != "" {
				return p.Name
			}
			return id
		},
		"outcome": func(o string) string { return translate(lang, "outcome."+o) },
		"join":    strings.Join,
		"list":    func(s ...string) []string { return s },
	}
}

// render writes a page in the request's language.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, ss *session, v view) {
	lang := c.language(w, r)
	v.Lang, v.Langs, v.Path = lang, languages, r.URL.Path
	if v.Title == "" {
		v.Title = translate(lang, "title."+name)
	}
	if ss != nil {
		v.Role, v.User, v.CSRF = ss.role, ss.user, ss.csrf
	}
	var b bytes.Buffer
	if err := c.pages[lang][name].Execute(&b, v); err != nil {
		c.log.Error("console template", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// fail answers with an error page (in HTML; the reason, if any, in the
// Crossroads-Reason header and the page).
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, reason crossroads.Reason, msg string) {
	if reason != "" {
		w.Header().Set("Crossroads-Reason", string(reason))
	}
	c.render(w, r, status, "error", c.sess.get(cookieValue(r, sessionCookie)), view{Error: msg, Reason: string(reason)})
}

// download sets the headers of an attachment.
func download(w http.ResponseWriter, contentType, filename string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", path.Base(filename)))
}
