package console

import (
	"net/http"
	"strings"

	"golang.org/x/text/language"
)

// languages are the console's languages, the first the default.
var languages = []string{"en", "nl", "fr"}

var matcher = language.NewMatcher([]language.Tag{language.English, language.Dutch, language.French})

// language picks the page's language: an explicit ?lang= (remembered in a
// cookie), the cookie, or the browser's Accept-Language.
func (c *Console) language(w http.ResponseWriter, r *http.Request) string {
	if l := r.URL.Query().Get("lang"); known(l) {
		setCookie(w, langCookie, l, 365*24*3600, http.SameSiteLaxMode)
		return l
	}
	if l := cookieValue(r, langCookie); known(l) {
		return l
	}
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil || len(tags) == 0 {
		return languages[0]
	}
	_, i, conf := matcher.Match(tags...)
	if conf == language.No {
		return languages[0]
	}
	return languages[i]
}

func known(l string) bool {
	for _, x := range languages {
		if l == x {
			return true
		}
	}
	return false
}

// translate returns the message of key in lang (English when missing,
// the key itself when unknown: a test keeps every key in every language).
func translate(lang, key string) string {
	if m, ok := messages[lang][key]; ok {
		return m
	}
	if m, ok := messages["en"][key]; ok {
		return m
	}
	return key
}

// purposeName says a purpose code in words: from the catalogue, or the
// code with its dashes as spaces.
func purposeName(lang, code string) string {
	if p, ok := purposes[code]; ok {
		if s := p[lang]; s != "" {
			return s
		}
		return p["en"]
	}
	if code == "" {
		return ""
	}
	s := strings.ReplaceAll(code, "-", " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

// purposes describes, in words, the purposes that authorisations name by
// code. The registers carry codes only (an authorisation's Purposes); a
// citizen must read what their data were used for, so the console keeps
// this small catalogue of the purposes in use; an unknown code is shown
// as words made of the code.
var purposes = map[string]map[string]string{
	"social-aid":           {"en": "Social assistance (right to social integration)", "nl": "Maatschappelijke dienstverlening (leefloon)", "fr": "Aide sociale (revenu d'intégration)"},
	"debt-mediation":       {"en": "Debt mediation", "nl": "Schuldbemiddeling", "fr": "Médiation de dettes"},
	"unemployment-benefit": {"en": "Unemployment benefit", "nl": "Werkloosheidsuitkering", "fr": "Allocation de chômage"},
	"address-correction":   {"en": "Correction of an address", "nl": "Verbetering van een adres", "fr": "Correction d'une adresse"},
	"employer-check":       {"en": "Check of an employer", "nl": "Controle van een werkgever", "fr": "Contrôle d'un employeur"},
	"health-insurance":     {"en": "Health insurance", "nl": "Ziekteverzekering", "fr": "Assurance maladie"},
	"pension":              {"en": "Pension", "nl": "Pensioen", "fr": "Pension"},
	"child-benefit":        {"en": "Child benefit", "nl": "Kinderbijslag", "fr": "Allocations familiales"},
}
