"""Offline NLU: answers, attribute mentions, negation, item references, intents, embeddings."""

from __future__ import annotations

import time

import pytest

from crs.kb import Catalog, FacetSpec, Item, KnowledgeGraph, Vocabulary, build_graph
from crs.kb.embeddings import default_embedder
from crs.language.nlu import MAX_CHARS, NLUContext, OfflineNLU, Understander
from crs.reasoning.state import Feedback, Intent


def _album(ident: str, name: str, **facets: list[str]) -> Item:
    return Item(id=ident, name=name, attributes=dict(facets))


US, UK = ["United States"], ["United Kingdom"]
ALBUMS = [
    _album("kob", "Kind of Blue — Miles Davis", genre=["jazz"], decade=["1950s"], mood=["calm"], country=US,
           vocals=["instrumental"]),
    _album("hh", "Head Hunters — Herbie Hancock", genre=["jazz", "fusion", "funk"], decade=["1970s"],
           mood=["energetic"], country=US, vocals=["instrumental"]),
    _album("bb", "Bitches Brew — Miles Davis", genre=["jazz", "fusion"], decade=["1970s"], mood=["dark"],
           country=US, vocals=["instrumental"]),
    _album("thr", "Thriller — Michael Jackson", genre=["pop"], decade=["1980s"], mood=["party"], country=US,
           vocals=["vocal"]),
    _album("cl", "Closer — Joy Division", genre=["post punk", "new wave"], decade=["1980s"], mood=["dark"],
           country=UK, vocals=["vocal"]),
    _album("vt", "Violator — Depeche Mode", genre=["new wave", "electronic"], decade=["1990s"], mood=["dark"],
           country=UK, vocals=["vocal"]),
    _album("ill", "Illmatic — Nas", genre=["hip hop"], decade=["1990s"], mood=["dark"], country=US,
           vocals=["vocal"]),
    _album("dis", "Discovery — Daft Punk", genre=["electronic"], decade=["2000s"], mood=["party"],
           country=["France"], vocals=["vocal"]),
    _album("jol", "Jolene — Dolly Parton", genre=["country"], decade=["1970s"], mood=["sad"], country=US,
           vocals=["vocal"]),
    _album("mop", "Master of Puppets — Metallica", genre=["metal"], decade=["1980s"], mood=["energetic"],
           country=US, vocals=["vocal"]),
    _album("gg", "Getz/Gilberto — Stan Getz", genre=["bossa nova", "jazz"], decade=["1960s"], mood=["calm"],
           country=["Brazil"], vocals=["vocal"]),
    _album("rtr", "Rocket to Russia — Ramones", genre=["rock", "punk"], decade=["1970s"], mood=["energetic"],
           country=US, vocals=["vocal"]),
    _album("bal", "Ballads — John Coltrane", genre=["jazz", "ballad"], decade=["1960s"], mood=["romantic"],
           country=US, vocals=["instrumental"]),
    _album("pp", "Popular Problems — Leonard Cohen", genre=["folk"], decade=["2010s"], mood=["sad"],
           country=["Canada"], vocals=["vocal"]),
]
VOCABULARY = Vocabulary(facets={
    "genre": FacetSpec(synonyms={"hip hop": ["rap"], "electronic": ["edm", "electronica"], "metal": ["heavy metal"]}),
    "decade": FacetSpec(synonyms={"1950s": ["50s"], "1960s": ["60s"], "1970s": ["70s", "seventies"],
                                  "1980s": ["80s", "eighties"], "1990s": ["90s"]}),
    "mood": FacetSpec(synonyms={"calm": ["chill", "relaxed", "mellow"], "energetic": ["upbeat", "lively"],
                                "dark": ["gloomy", "brooding"], "party": ["danceable"],
                                "sad": ["melancholic"], "romantic": ["love songs"]}),
    "country": FacetSpec(synonyms={"United States": ["usa", "america", "american"],
                                   "United Kingdom": ["uk", "britain", "british"], "France": ["french"],
                                   "Brazil": ["brazilian"], "Canada": ["canadian"]}),
    "vocals": FacetSpec(synonyms={"vocal": ["vocals", "singing"]}),
})

NONE = NLUContext()
ASK = NLUContext(question="genre:jazz", options=("genre:rock", "genre:electronic"))
SHOWN = NLUContext(recommended=("kob", "thr", "cl"))
ONE = NLUContext(recommended=("dis",))
UNKNOWN = Feedback(intent="unknown")


def accept(*attrs: str, intent: Intent = "inform") -> Feedback:
    return Feedback(accept_attributes=attrs, intent=intent)


def reject(*attrs: str) -> Feedback:
    return Feedback(reject_attributes=attrs)


@pytest.fixture(scope="module")
def graph() -> KnowledgeGraph:
    return build_graph(Catalog(items=ALBUMS, vocabulary=VOCABULARY))


@pytest.fixture(scope="module")
def nlu(graph: KnowledgeGraph) -> OfflineNLU:
    return OfflineNLU(graph)


@pytest.fixture(scope="module")
def semantic(graph: KnowledgeGraph) -> OfflineNLU:
    return OfflineNLU(graph, default_embedder())


def check(nlu: OfflineNLU, text: str, context: NLUContext, expected: Feedback) -> None:
    assert nlu.understand(text, context) == expected, text


# -- yes / no answers to the pending question --------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("yes", accept("genre:jazz")),
    ("Yeah!", accept("genre:jazz")),
    ("sure", accept("genre:jazz")),
    ("yep, please", accept("genre:jazz")),
    ("oh yes", accept("genre:jazz")),
    ("ok", accept("genre:jazz")),
    ("why not", accept("genre:jazz")),
    ("I think so", accept("genre:jazz")),
    ("no", reject("genre:jazz")),
    ("nope", reject("genre:jazz")),
    ("Not really.", reject("genre:jazz")),
    ("no thanks", reject("genre:jazz")),
    ("I don't", reject("genre:jazz")),
    ("ok, no", reject("genre:jazz")),
    ("no jazz please", reject("genre:jazz")),
    ("I don't like it", reject("genre:jazz")),
])
def test_yes_and_no_answer_the_question(nlu: OfflineNLU, text: str, expected: Feedback) -> None:
    check(nlu, text, ASK, expected)


@pytest.mark.parametrize("text", [
    "I don't mind", "doesn't matter", "don't care", "whatever", "not sure", "maybe", "no preference",
])
def test_indifferent_answers_inform_with_no_ids(nlu: OfflineNLU, text: str) -> None:
    # The question attribute is put in neither list: the policy treats it as skipped.
    check(nlu, text, ASK, Feedback(intent="inform"))


@pytest.mark.parametrize(("text", "expected"), [
    ("yes, but not too dark", Feedback(("genre:jazz",), ("mood:dark",))),
    ("yes, from the 80s", accept("genre:jazz", "decade:1980s")),
    ("no, electronic", Feedback(("genre:electronic",), ("genre:jazz",))),
    ("no I want rock", Feedback(("genre:rock",), ("genre:jazz",))),
    ("not really, more like rock", Feedback(("genre:rock",), ("genre:jazz",))),
    ("electronic", accept("genre:electronic")),
    ("Rock!", accept("genre:rock")),
    ("ok show me some", Feedback(intent="recommend_now")),
])
def test_answers_combined_with_mentions_and_options(nlu: OfflineNLU, text: str, expected: Feedback) -> None:
    check(nlu, text, ASK, expected)


def test_answers_without_anything_to_answer_are_unknown(nlu: OfflineNLU) -> None:
    check(nlu, "yes", NONE, UNKNOWN)
    check(nlu, "yes", SHOWN, UNKNOWN)  # which of the three?
    check(nlu, "either", SHOWN, UNKNOWN)


@pytest.mark.parametrize("text", ["doesn't matter", "whatever", "I'm not sure what I want", "no idea", "anything"])
def test_no_wish_at_the_start_lets_the_bot_lead(nlu: OfflineNLU, text: str) -> None:
    check(nlu, text, NONE, Feedback(intent="inform"))  # the policy asks its best question (not "didn't catch")


def test_answer_words_inside_a_sentence_are_not_answers(nlu: OfflineNLU) -> None:
    check(nlu, "do you have anything by Miles Davis", ASK, Feedback(want_items=("kob", "bb")))
    check(nlu, "rock, yes", ASK, accept("genre:rock"))
    check(nlu, "maybe jazz", NONE, accept("genre:jazz"))


# -- attribute mentions --------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("jazz", accept("genre:jazz")),
    ("JAZZ", accept("genre:jazz")),
    ("I love jazz", accept("genre:jazz")),
    ("some rap", accept("genre:hip hop")),
    ("Hip-Hop", accept("genre:hip hop")),
    ("hiphop", accept("genre:hip hop")),
    ("ballads", accept("genre:ballad")),
    ("vocals", accept("vocals:vocal")),
    ("new wave from the 80s", accept("genre:new wave", "decade:1980s")),
    ("something from the 1980's", accept("decade:1980s")),
    ("music from the USA", accept("country:United States")),
    ("united states", accept("country:United States")),
    ("post punk", accept("genre:post punk")),
    ("punk", accept("genre:punk")),
    ("heavy metal", accept("genre:metal")),
    ("bossa nova", accept("genre:bossa nova")),
    ("love songs", accept("mood:romantic")),
    ("french electronic", accept("country:France", "genre:electronic")),
    ("chill jazz from brazil", accept("mood:calm", "genre:jazz", "country:Brazil")),
    ("Café jazz, s'il vous plaît", accept("genre:jazz")),
])
def test_mentions_by_name_synonym_plural_and_phrase(nlu: OfflineNLU, text: str, expected: Feedback) -> None:
    check(nlu, text, NONE, expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("popular stuff", UNKNOWN),  # "pop" is a word, not a prefix
    ("rocket science", UNKNOWN),
    ("poppy tunes", UNKNOWN),
    ("rocks", accept("genre:rock")),
    ("pop", accept("genre:pop")),
    ("pop rock", accept("genre:pop", "genre:rock")),
    ("newer waves", UNKNOWN),
    ("something new", UNKNOWN),  # a grammar word alone is never an attribute
])
def test_matches_respect_word_boundaries(nlu: OfflineNLU, text: str, expected: Feedback) -> None:
    check(nlu, text, NONE, expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("jaz", accept("genre:jazz")),
    ("jazzz", accept("genre:jazz")),
    ("electornic", accept("genre:electronic")),
    ("metl", accept("genre:metal")),
    ("hip hopp", accept("genre:hip hop")),
    ("something mellw", accept("mood:calm")),
    ("Brazillian", accept("country:Brazil")),
    ("no jaz", reject("genre:jazz")),
    ("fun", UNKNOWN),  # a common word one letter from "funk"
    ("rokc", UNKNOWN),  # two edits in four letters is too far
    ("come back", UNKNOWN),  # a real word is not a typo of "black"
    ("ja", UNKNOWN),
])
def test_small_typos_are_tolerated(nlu: OfflineNLU, text: str, expected: Feedback) -> None:
    check(nlu, text, NONE, expected)


def test_typo_tolerance_follows_the_cutoff(graph: KnowledgeGraph) -> None:
    assert OfflineNLU(graph, fuzzy_cutoff=95).understand("electornic", NONE) == UNKNOWN


def test_ambiguous_words_prefer_context_then_exact_spelling() -> None:
    items = [
        _album("a", "A", genre=["blues", "rock"], mood=["blue"]),
        _album("b", "B", style=["rock"], mood=["happy"]),
    ]
    nlu = OfflineNLU(build_graph(Catalog(items=items)))
    assert nlu.understand("blues", NONE) == accept("genre:blues")
    assert nlu.understand("blue", NONE) == accept("mood:blue")
    assert nlu.understand("rock", NONE) == accept("genre:rock")
    assert nlu.understand("rock", NLUContext(question="style:rock")) == accept("style:rock")
    assert nlu.understand("rocks", NLUContext(accepted=("style:rock",))) == accept("style:rock")


def test_a_typo_prefers_a_real_name_over_a_run_together_one() -> None:
    items = [_album("a", "A", tag=["jay-z", "jazz"])]
    nlu = OfflineNLU(build_graph(Catalog(items=items)))
    assert nlu.understand("jaz", NONE) == accept("tag:jazz")
    assert nlu.understand("jayz", NONE) == accept("tag:jay-z")


# -- negation ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("not rock", reject("genre:rock")),
    ("anything but country", reject("genre:country")),
    ("no jazz please", reject("genre:jazz")),
    ("I don't want metal", reject("genre:metal")),
    ("I do not like metal", reject("genre:metal")),
    ("I hate rap", reject("genre:hip hop")),
    ("without vocals", reject("vocals:vocal")),
    ("rather not 80s", reject("decade:1980s")),
    ("no more electronica", reject("genre:electronic")),
    ("I'm done with jazz", reject("genre:jazz")),
    ("had enough of metal", reject("genre:metal")),
    ("nothing too gloomy", reject("mood:dark")),
    ("I can't stand country", reject("genre:country")),
])
def test_negations_reject(nlu: OfflineNLU, text: str, expected: Feedback) -> None:
    check(nlu, text, NONE, expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("jazz but not fusion", Feedback(("genre:jazz",), ("genre:fusion",))),
    ("not rock, jazz", Feedback(("genre:jazz",), ("genre:rock",))),
    ("not rock. jazz", Feedback(("genre:jazz",), ("genre:rock",))),
    ("no metal but some punk", Feedback(("genre:punk",), ("genre:metal",))),
    ("I hate rap and metal", reject("genre:hip hop", "genre:metal")),
    ("no jazz or funk", reject("genre:jazz", "genre:funk")),
    ("neither rock nor metal", reject("genre:rock", "genre:metal")),
    ("not rock and some jazz", Feedback(("genre:jazz",), ("genre:rock",))),
    ("I don't like rock and I like jazz", Feedback(("genre:jazz",), ("genre:rock",))),
    ("I don't like rock I like jazz", Feedback(("genre:jazz",), ("genre:rock",))),
    ("I'd rather have jazz than rock", Feedback(("genre:jazz",), ("genre:rock",))),
    ("80s, without vocals", Feedback(("decade:1980s",), ("vocals:vocal",))),
    ("I don't mind jazz", accept("genre:jazz")),
    ("I don't care about jazz", Feedback(intent="inform")),
])
def test_negation_scope_ends_at_the_clause(nlu: OfflineNLU, text: str, expected: Feedback) -> None:
    check(nlu, text, NONE, expected)


# -- references to shown items -------------------------------------------------------------------

@pytest.mark.parametrize(("text", "item"), [
    ("the second one", "thr"),
    ("Second", "thr"),
    ("the 2nd", "thr"),
    ("number 3", "cl"),
    ("number two", "thr"),
    ("#2", "thr"),
    ("# 1", "kob"),
    ("2", "thr"),
    ("the last one", "cl"),
    ("the first", "kob"),
    ("the middle one", "thr"),
    ("I'll take the first one", "kob"),
    ("Thriller", "thr"),
    ("closer", "cl"),
    ("the Joy Division one", "cl"),
    ("Kind of Blue — Miles Davis", "kob"),
    ("kind of blu", "kob"),
    ("thriler please", "thr"),
])
def test_item_references_accept(nlu: OfflineNLU, text: str, item: str) -> None:
    check(nlu, text, SHOWN, Feedback(accept_item=item))


@pytest.mark.parametrize(("text", "expected"), [
    ("not the first one", Feedback(reject_items=("kob",))),
    ("I don't like the second", Feedback(reject_items=("thr",))),
    ("not thriller", Feedback(reject_items=("thr",))),
    ("the second, not the first", Feedback(accept_item="thr", reject_items=("kob",))),
    ("none of these", Feedback(reject_items=("kob", "thr", "cl"))),
    ("neither", Feedback(reject_items=("kob", "thr", "cl"))),
    ("no", Feedback(reject_items=("kob", "thr", "cl"))),
    ("something close to jazz", accept("genre:jazz")),  # not a misspelt "Closer"
    ("the fifth one", UNKNOWN),  # only three were shown
    ("number 12", UNKNOWN),
    ("that one", UNKNOWN),  # which one?
])
def test_item_references_reject_or_fail_cleanly(nlu: OfflineNLU, text: str, expected: Feedback) -> None:
    check(nlu, text, SHOWN, expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("I'll take it", Feedback(accept_item="dis")),
    ("that one", Feedback(accept_item="dis")),
    ("yes", Feedback(accept_item="dis")),
    ("perfect", Feedback(accept_item="dis")),
    ("not that one", Feedback(reject_items=("dis",))),
    ("no", Feedback(reject_items=("dis",))),
    ("Daft Punk", Feedback(accept_item="dis")),
    ("I love it", Feedback(accept_item="dis")),
    ("is it good?", UNKNOWN),  # a bare "it" needs a verb to be a choice
])
def test_a_single_shown_item_is_it(nlu: OfflineNLU, text: str, expected: Feedback) -> None:
    check(nlu, text, ONE, expected)


def test_a_name_part_shared_by_two_shown_items_names_neither(nlu: OfflineNLU) -> None:
    both = NLUContext(recommended=("kob", "bb"))
    check(nlu, "the Miles Davis one", both, UNKNOWN)
    check(nlu, "bitches brew", both, Feedback(accept_item="bb"))
    check(nlu, "Miles Davis", NLUContext(recommended=("kob", "thr")), Feedback(accept_item="kob"))


@pytest.mark.parametrize("text", [
    "something else", "something different", "Not today.", "not this time", "let's try something different",
    "not quite", "hmm, not really feeling these", "I've heard them all", "nah, something different",
    "something new please", "let's try something new",
])
def test_turning_down_in_other_words_is_a_no(nlu: OfflineNLU, text: str) -> None:
    check(nlu, text, ASK, reject("genre:jazz"))  # "Still in the mood for jazz?" "Not today."
    check(nlu, text, SHOWN, Feedback(reject_items=("kob", "thr", "cl")))


@pytest.mark.parametrize("text", [
    "more", "more?", "show me more", "others please", "any others?", "other options", "different ones",
    "next", "what else do you have?", "ok, show me more", "next question",
])
def test_asking_for_more_turns_the_list_down_and_asks_for_the_next(nlu: OfflineNLU, text: str) -> None:
    check(nlu, text, SHOWN, Feedback(reject_items=("kob", "thr", "cl"), intent="recommend_now"))
    check(nlu, text, ASK, Feedback(intent="inform"))  # to a question: skipped, like "I don't mind"


def test_a_wish_instead_turns_down_the_question_or_the_list(nlu: OfflineNLU) -> None:
    check(nlu, "I want rock instead", ASK, Feedback(accept_attributes=("genre:rock",),
                                                    reject_attributes=("genre:jazz",)))
    check(nlu, "rock instead", SHOWN, Feedback(accept_attributes=("genre:rock",), reject_items=("kob", "thr", "cl")))
    check(nlu, "jazz instead of rock", ASK, Feedback(accept_attributes=("genre:jazz",),
                                                     reject_attributes=("genre:rock",)))


@pytest.mark.parametrize("text", ["go back", "undo", "scratch that", "wait, go back", "take that back"])
def test_go_back_is_undo(nlu: OfflineNLU, text: str) -> None:
    check(nlu, text, ASK, Feedback(intent="undo"))
    check(nlu, text, SHOWN, Feedback(intent="undo"))


@pytest.mark.parametrize(("text", "expected"), [
    ("y", accept("genre:jazz")), ("yeh", accept("genre:jazz")), ("k", accept("genre:jazz")),
    ("👍", accept("genre:jazz")), ("n", reject("genre:jazz")), ("👎", reject("genre:jazz")),
])
def test_chat_speak_and_emoji_answer(nlu: OfflineNLU, text: str, expected: Feedback) -> None:
    check(nlu, text, ASK, expected)


def test_chat_speak_asks_for_lists(nlu: OfflineNLU) -> None:
    check(nlu, "gimme recs", ASK, Feedback(intent="recommend_now"))
    check(nlu, "another one", SHOWN, Feedback(reject_items=("kob", "thr", "cl"), intent="recommend_now"))
    check(nlu, "👋", NONE, Feedback(intent="greet"))


def test_an_option_of_the_question_picked_by_its_place(nlu: OfflineNLU) -> None:
    offered = NLUContext(question="genre:jazz", options=("genre:jazz", "genre:rock", "genre:electronic"))
    check(nlu, "the second one", offered, accept("genre:rock"))  # as shown: jazz? or rock, electronic
    check(nlu, "3", offered, accept("genre:electronic"))
    check(nlu, "I'll take the first one", offered, accept("genre:jazz"))
    check(nlu, "the second one, not rock", offered, reject("genre:rock"))  # more said: read as usual
    assert nlu.understand("the second one", SHOWN).accept_item == "thr"  # a list on screen comes first


def test_something_else_with_a_wish_is_the_wish(nlu: OfflineNLU) -> None:
    check(nlu, "something else, maybe rock", SHOWN, Feedback(accept_attributes=("genre:rock",),
                                                            reject_items=("kob", "thr", "cl")))
    check(nlu, "more rock", SHOWN, accept("genre:rock"))  # "more" before a wish is no answer
    check(nlu, "more rock", ASK, accept("genre:rock"))


def test_none_of_these_with_a_question_rejects_the_question_and_options(nlu: OfflineNLU) -> None:
    check(nlu, "none of these", ASK, reject("genre:jazz", "genre:rock", "genre:electronic"))
    check(nlu, "neither", ASK, reject("genre:jazz", "genre:rock", "genre:electronic"))


def test_ordinals_without_a_shown_list_are_not_references(nlu: OfflineNLU) -> None:
    check(nlu, "the second one", NONE, UNKNOWN)


# -- intents -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("just recommend something", Feedback(intent="recommend_now")),
    ("Surprise me!", Feedback(intent="recommend_now")),
    ("show me some", Feedback(intent="recommend_now")),
    ("what do you have?", Feedback(intent="recommend_now")),
    ("show me some jazz", accept("genre:jazz", intent="recommend_now")),
    ("start over", Feedback(intent="restart")),
    ("reset", Feedback(intent="restart")),
    ("new search", Feedback(intent="restart")),
    ("let's start over with jazz", accept("genre:jazz", intent="restart")),
    ("why?", Feedback(intent="why")),
    ("hi", Feedback(intent="greet")),
    ("Hello there", Feedback(intent="greet")),
    ("thanks", Feedback(intent="thanks")),
    ("thank you!", Feedback(intent="thanks")),
    ("hi, I'm into jazz", accept("genre:jazz")),
])
def test_intents(nlu: OfflineNLU, text: str, expected: Feedback) -> None:
    check(nlu, text, NONE, expected)


@pytest.mark.parametrize(("text", "context", "about"), [
    ("why this one?", ONE, "dis"),
    ("why?", ONE, None),
    ("why the second one", SHOWN, "thr"),
    ("why Thriller?", SHOWN, "thr"),
    ("why?", SHOWN, None),
])
def test_why_names_the_item_it_is_about(nlu: OfflineNLU, text: str, context: NLUContext, about: str | None) -> None:
    check(nlu, text, context, Feedback(intent="why", about_item=about))


def test_accepting_an_item_outweighs_recommend_now(nlu: OfflineNLU) -> None:
    check(nlu, "show me the second one", SHOWN, Feedback(accept_item="thr"))


def test_thanks_with_a_choice_is_a_choice(nlu: OfflineNLU) -> None:
    check(nlu, "thanks, I'll take the last one", SHOWN, Feedback(accept_item="cl"))


# -- embeddings ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("something relaxing to unwind", accept("mood:calm")),
    ("music to dance to at a party", accept("mood:party")),
    ("something to dance to", accept("mood:party")),
    ("I want to cry", accept("mood:sad")),
    ("I need energy", accept("mood:energetic")),
    ("I don't want anything to dance to", reject("mood:party")),
    ("just recommend something relaxing to unwind", accept("mood:calm", intent="recommend_now")),
    ("jazz to unwind", accept("genre:jazz")),  # an exact word wins; no embedding
    ("relaxing", UNKNOWN),  # one word is too little to embed
    ("I want something", UNKNOWN),  # grammar words alone are never embedded
    ("tell me more", UNKNOWN),
    ("what's the weather like today", UNKNOWN),
    ("can you help me with my taxes", UNKNOWN),
    ("lorem ipsum dolor sit amet", UNKNOWN),
    ("asdf qwerty", UNKNOWN),
])
def test_free_text_falls_back_to_embeddings(semantic: OfflineNLU, text: str, expected: Feedback) -> None:
    check(semantic, text, NONE, expected)


def test_embeddings_are_not_used_for_answers_or_without_an_embedder(
    nlu: OfflineNLU, semantic: OfflineNLU
) -> None:
    check(semantic, "no, something relaxing to unwind", ASK, reject("genre:jazz"))
    check(nlu, "something relaxing to unwind", NONE, UNKNOWN)


def test_embedding_threshold_is_a_setting(graph: KnowledgeGraph) -> None:
    strict = OfflineNLU(graph, default_embedder(), embedding_threshold=0.99)
    check(strict, "something relaxing to unwind", NONE, UNKNOWN)


# -- robustness ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   ", "\n\t", "?!...", "🎷🎺", "\u200f\u202e", "\x00\x01\x02"])
def test_empty_or_wordless_text_is_unknown(nlu: OfflineNLU, text: str) -> None:
    check(nlu, text, ASK, UNKNOWN)


@pytest.mark.parametrize(("text", "expected"), [
    ("'; DROP TABLE albums; --", UNKNOWN),
    ("Robert'); DELETE FROM items WHERE 1=1;--", UNKNOWN),
    ("<script>alert('jazz')</script>", accept("genre:jazz")),
    ("\u202ejazz\u200f 🎷\x00", accept("genre:jazz")),
    ("ja\u200bzz", accept("genre:jazz")),
    ("\ufeffＪＡＺＺ", accept("genre:jazz")),
    ("#99999999999999999999", UNKNOWN),
    ("number 99999999999999999999", UNKNOWN),
    ("爵士乐 موسيقى джаз", UNKNOWN),
    ("a" * 5000, UNKNOWN),
    ("\ud800 jazz", accept("genre:jazz")),
    ("%s %d {0} ${jazz}", accept("genre:jazz")),
])
def test_hostile_text_never_raises(nlu: OfflineNLU, text: str, expected: Feedback) -> None:
    check(nlu, text, SHOWN if text.startswith(("#", "number")) else NONE, expected)


def test_hostile_text_with_embeddings(semantic: OfflineNLU) -> None:
    for text in ("'; DROP TABLE albums; --", "\x00" * 100 + "relaxing unwind", "💀" * 1000):
        feedback = semantic.understand(text, SHOWN)
        assert feedback in (UNKNOWN, accept("mood:calm")), text


def test_very_long_text_is_truncated_and_fast(semantic: OfflineNLU) -> None:
    assert MAX_CHARS == 2000
    head = "jazz " + "blah " * 50
    text = (head * 2000)[:100_000]
    start = time.perf_counter()
    feedback = semantic.understand(text, SHOWN)
    assert time.perf_counter() - start < 0.5
    assert feedback == accept("genre:jazz")
    # Words after the first MAX_CHARS characters are not read.
    check(semantic, "x " * MAX_CHARS + "jazz", NONE, UNKNOWN)


def test_the_message_limit_is_one_setting(tmp_path) -> None:
    """Raising Settings.max_message_chars lets the parser read as far as the conversation accepts."""
    from crs import Recommender, Settings

    text = "x " * 1500 + "jazz"  # 3,004 characters: "jazz" lies past the default limit
    short = Recommender.from_settings(Settings(state_dir=tmp_path / "a", memory=False))
    assert short.chat("ann", "s", text).action == "error"
    long = Recommender.from_settings(Settings(state_dir=tmp_path / "b", memory=False, max_message_chars=5000))
    long.chat("ann", "s", text)
    assert "genre:jazz" in long.state("ann", "s").accepted


def test_understanding_is_fast_on_short_messages(nlu: OfflineNLU) -> None:
    texts = ["yes", "no, rock", "not the first one", "electornic from the 80s", "start over"]
    start = time.perf_counter()
    for _ in range(100):
        for text in texts:
            nlu.understand(text, ASK)
    assert (time.perf_counter() - start) / 500 < 0.005


def test_results_are_deterministic_and_stateless(semantic: OfflineNLU) -> None:
    texts = ["jazz but not fusion", "something relaxing to unwind", "the second one", "hmm"]
    first = [semantic.understand(t, SHOWN) for t in texts]
    assert [semantic.understand(t, SHOWN) for t in reversed(texts)] == first[::-1]


def test_offline_nlu_is_an_understander(nlu: OfflineNLU) -> None:
    understander: Understander = nlu
    assert understander.understand("jazz", NONE) == accept("genre:jazz")


def test_items_unknown_to_the_catalog_are_only_referenced_by_position(nlu: OfflineNLU) -> None:
    stale = NLUContext(recommended=("gone", "thr"))
    check(nlu, "the first one", stale, Feedback(accept_item="gone"))
    check(nlu, "thriller", stale, Feedback(accept_item="thr"))


# -- items named as examples ("something like Kind of Blue") --------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("something like Kind of Blue", Feedback(like_items=("kob",))),
    ("Miles Davis please", Feedback(like_items=("kob", "bb"))),  # an artist names all their albums
    ("more like thriller", Feedback(like_items=("thr",))),  # one word needs a cue...
    ("thriller", UNKNOWN),  # ...or it is just a word
    ("nothing like Kind of Blue", UNKNOWN),  # what is not wanted, but not which part of it
    ("anything by Miles Davis", Feedback(want_items=("kob", "bb"))),  # his albums themselves
    ("jazz like Miles Davis from the 1970s",
     Feedback(accept_attributes=("genre:jazz", "decade:1970s"), like_items=("kob", "bb"))),
])
def test_catalog_names_are_examples_of_what_is_wanted(nlu: OfflineNLU, text: str, expected: Feedback) -> None:
    check(nlu, text, NONE, expected)


def test_a_shown_item_named_is_chosen_not_taken_as_an_example(nlu: OfflineNLU) -> None:
    shown = NLUContext(recommended=("kob", "hh"))
    check(nlu, "I'll take Kind of Blue", shown, Feedback(accept_item="kob"))
