"""Clean prose the default (paper) rules keep and datatrove's definitions drop: an event listing
whose records repeat their `Ort:` / `Eintritt:` fields, a numbered list, a news item in one
paragraph that ends in a link; and the blocklist's allow-list for a site that UT1 lists whole
(`url_blocklist.allow_domains`)."""

from __future__ import annotations

from gristmill.filters.fineweb import FineWebQuality, FineWebQualityParams
from gristmill.filters.gopher_quality import GopherQuality, GopherQualityParams, list_marker_tokens
from gristmill.filters.gopher_repetition import (
    GopherRepetition,
    GopherRepetitionParams,
    is_layout_or_field_line,
    repeated_lines,
)
from gristmill.filters.text import TextView
from gristmill.filters.url_blocklist import UrlBlocklist, UrlBlocklistParams

EVENTS = [
    ("Lesung: „Die Stadt der Träume“",
     "Die Autorin liest aus ihrem neuen Roman über eine Kindheit am Hafen und spricht danach mit dem "
     "Publikum über das Schreiben, über Erinnerung und über die Frage, wem eine Geschichte gehört."),
    ("Vortrag: Die Geschichte unserer Stadtmauer",
     "Der Heimatverein zeigt Fotos aus hundert Jahren und erklärt, warum von der Mauer heute nur noch "
     "zwei Türme stehen und wie die Steine beim Bau der Bahnhofstraße wiederverwendet wurden."),
    ("Konzert: Junge Talente am Klavier",
     "Schülerinnen und Schüler der Musikschule spielen Werke von Bach bis Debussy. Nach dem Konzert "
     "lädt der Förderverein zu Saft und Gebäck ein, der Erlös geht an die Instrumentenkasse."),
    ("Workshop: Fotografieren mit dem Handy",
     "Wie gelingt ein gutes Bild ohne teure Kamera? Eine Fotografin zeigt an praktischen Beispielen, "
     "worauf es bei Licht, Ausschnitt und Schärfe ankommt, und bespricht mitgebrachte Aufnahmen."),
    ("Filmabend: Der Fluss",
     "Der Dokumentarfilm begleitet ein Jahr lang die Menschen, die am Fluss leben und arbeiten. Im "
     "Anschluss beantwortet der Regisseur Fragen des Publikums zu den Dreharbeiten."),
]
EVENT_LISTING = "Veranstaltungen im März\n" + "\n".join(
    f"{title}\n{text}\nDatum: {day}. März 2026, {time} Uhr\nOrt: Stadtbibliothek, Lesesaal\nEintritt: frei"
    for day, time, (title, text) in zip((3, 10, 17, 24, 31), ("19:30", "19:00", "18:00", "10:00", "20:00"),
                                        EVENTS, strict=True))

NUMBERED_LIST = "Ten things to check before you buy a used bike\n" + "\n".join(
    f"{i}. {item}" for i, item in enumerate((
        "Look at the frame for cracks, especially near the welds and the bottom bracket.",
        "Spin both wheels and watch whether the rims wobble from side to side.",
        "Squeeze the brakes hard and make sure the levers do not touch the handlebar.",
        "Shift through all the gears while someone lifts the back wheel.",
        "Check the chain for rust and measure how far it has stretched.",
        "Ask when the tyres were last replaced and look for cuts in the tread.",
        "Make sure the saddle and the seat post can be adjusted to your height.",
        "Ride it for a few minutes and listen for clicks or creaks under load.",
        "Ask the seller for the receipt or some other proof that the bike is theirs.",
        "Compare the price with what similar bikes sell for in your area.",
    ), start=1))


def decisions(text: str, language: str, compat: str) -> dict[str, str | None]:
    view = TextView(text, language)
    return {
        "gopher_repetition": GopherRepetition(GopherRepetitionParams(compat=compat), language)(view)[1],
        "gopher_quality": GopherQuality(GopherQualityParams(compat=compat), language)(view)[1],
        "fineweb": FineWebQuality(FineWebQualityParams(compat=compat), language)(view)[1],
    }


def test_event_listing_with_repeated_fields_is_kept():
    assert set(decisions(EVENT_LISTING, "de", "paper").values()) == {None}
    # datatrove's definitions count the repeated fields as duplicated lines
    theirs = decisions(EVENT_LISTING, "de", "datatrove")
    assert theirs["gopher_repetition"] == "dup_line_frac" and theirs["fineweb"] == "char_dup_ratio"


def test_repeated_sentences_still_count():
    """A page given twice, or a repeated teaser, is still duplicated text."""
    text = "\n".join(text for _, text in EVENTS[:3]) * 1
    twice = text + "\n" + text
    assert decisions(twice, "de", "paper")["gopher_repetition"] == "dup_line_frac"
    teaser = "Mehr lesen: Die ganze Geschichte gibt es nur für Abonnenten unserer Zeitung, jetzt testen."
    # too long for a field: its repeats count
    assert repeated_lines([teaser] * 3, skip_layout_and_fields=True) == (2, 2 * len(teaser))


def test_layout_and_field_lines():
    for line in ("-", "|", "* * *", "Ort: Stadthalle", "Eintritt: frei", "Price: $12", "Anne: Ja."):
        assert is_layout_or_field_line(line), line
    # a label alone is an interface's ("Average rating:" under every item of a 2008 home page)
    for line in ("", " ", "\t\xa0\xa0", "Anne:", "Average rating:", "Eat every 2–3 hours", "Hilfreich?",
                 "Das ist ein Satz: mit einem Doppelpunkt darin, der weit über eine Feldzeile "
                 "hinausgeht und daher als Text zählt."):
        assert not is_layout_or_field_line(line), line


def test_numbered_list_is_not_a_table_of_numbers():
    assert decisions(NUMBERED_LIST, "en", "paper")["gopher_quality"] is None
    ours = GopherQuality(GopherQualityParams(), "en")(TextView(NUMBERED_LIST, "en"))[0]
    theirs = GopherQuality(GopherQualityParams(compat="datatrove"), "en")(TextView(NUMBERED_LIST, "en"))[0]
    assert ours["gopher_alpha_words_ratio"] == 1.0 > theirs["gopher_alpha_words_ratio"]
    # German keeps "3." whole; English splits the period off; a table row is not a list item
    lines = [["3.", "Oktober", "2019"], ["iv", ")", "Schluss"], ["12", "|", "4"], ["7"]]
    assert list_marker_tokens(lines) == ["3.", "iv"]


NEWS_ITEM = ("Die bundesweite Vorbereitungstagung der Interkulturellen Woche findet am 11. und 12. "
             "Februar im Online-Format statt; das Projekt „Faktor 112“ wird daran teilnehmen. Geplant "
             "sind unter anderem Workshops zur Öffentlichkeitsarbeit. Die Woche selbst wird vom 25. "
             "September bis 2. Oktober in vielen Städten durchgeführt. Infos unter https://example.org/")


def test_one_paragraph_ending_in_a_link_is_kept():
    """The line shares of a one-line text are its last character: undefined, not 0."""
    ours, _ = FineWebQuality(FineWebQualityParams(), "de")(TextView(NEWS_ITEM, "de"))
    assert decisions(NEWS_ITEM, "de", "paper")["fineweb"] is None
    assert ours["fineweb_line_punct_ratio"] != ours["fineweb_line_punct_ratio"]  # NaN
    assert decisions(NEWS_ITEM, "de", "datatrove")["fineweb"] == "line_punct_ratio"
    # two lines are judged: a list of names is still not prose
    names = "Kyle Busch und Martin Truex\nDenny Hamlin und Joey Logano und Ryan Blaney"
    assert decisions(names, "en", "paper")["fineweb"] == "line_punct_ratio"


def test_table_of_numbers_is_still_dropped():
    drivers = ("Kyle Busch", "Martin Truex", "Kevin Harvick", "Denny Hamlin", "Joey Logano", "Ryan Blaney")
    rows = "\n".join(f"{i} | {d} | {5040 - 9 * i} | {i % 5} | {i * 3} | {20 - i % 7} |"
                     for i, d in enumerate(drivers * 5, start=1))
    table = "Standings after 36 races\nPos. | Points | Wins | Top 5 | Top 10 |\n" + rows
    assert decisions(table, "en", "paper")["gopher_quality"] == "gopher_below_alpha_threshold"


def test_allow_domains_spare_a_listed_domain_and_its_subdomains():
    allow = UrlBlocklist(UrlBlocklistParams(bundled=False, url_words=False, extra_domains=["news.example"],
                                            allow_domains=["News.Example."]), "de")
    block = UrlBlocklist(UrlBlocklistParams(bundled=False, url_words=False,
                                            extra_domains=["news.example"]), "de")
    text = TextView("Im Interview spricht die Sängerin über ihr neues Album.", "de",
                    "https://www.news.example/magazin/interview-mit-der-saengerin")
    assert block(text) == ({"url_blocklist_hit": 1.0}, "domain")
    assert allow(text) == ({"url_blocklist_hit": 1.0}, None)  # still a hit in the signal, not dropped
    other = TextView("x", "de", "https://othernews.example/a")
    assert allow(other)[1] is None and allow(other)[0]["url_blocklist_hit"] == 0.0


def test_allow_domains_on_the_bundled_list():
    """gay.ch, a news site that UT1 lists whole, is dropped unless allowed."""
    url = "https://gay.ch/news/vatikan-eltern-sollen-queere-kinder-unterstuetzen-sagt-der-papst"
    view = TextView("Der Papst hat Eltern dazu aufgerufen, ihre queeren Kinder zu unterstützen.", "de", url)
    assert UrlBlocklist(UrlBlocklistParams(url_words=False), "de")(view)[1] == "domain"
    assert UrlBlocklist(UrlBlocklistParams(url_words=False, allow_domains=["gay.ch"]), "de")(view)[1] is None
