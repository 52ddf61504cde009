"""The demo bookshop's catalogue: its reading topics (grouped into families of related
topics, each with descriptive words and title nouns), title adjectives and the profile
text templates. Data only: :mod:`rlmrec.data.demo` builds the world from it and
:mod:`rlmrec.data.demo_profiles` writes the profiles.

Changing anything here changes the demo: bump ``GENERATOR_VERSION`` in
:mod:`rlmrec.data.demo_cache` so cached copies are regenerated.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ADJECTIVES",
    "ITEM_TEMPLATES",
    "TOPICS",
    "USER_MINOR",
    "USER_NEGATIVE",
    "USER_OPENERS",
    "Topic",
]


@dataclass(frozen=True)
class Topic:
    """One latent interest: its display name, family and descriptive vocabulary."""

    name: str
    family: str
    words: tuple[str, ...]
    title_nouns: tuple[str, ...]


def _t(name: str, family: str, words: str, nouns: str) -> Topic:
    return Topic(name, family, tuple(words.split(";")), tuple(nouns.split()))


TOPICS: tuple[Topic, ...] = (
    _t(
        "space opera",
        "speculative",
        "starships;galactic empires;interstellar fleets;alien diplomacy;wormholes;"
        "rebel admirals;distant colonies;space battles",
        "Starfall Nebula Fleet Void",
    ),
    _t(
        "epic fantasy",
        "speculative",
        "dragons;warring kingdoms;ancient prophecy;sorcery;sword fights;hidden heirs;elven cities;long quests",
        "Crown Dragon Throne Sword",
    ),
    _t(
        "horror",
        "speculative",
        "haunted houses;creeping dread;ghosts;cursed objects;small-town monsters;nightmares;isolation",
        "Hollow Whisper Dark Cellar",
    ),
    _t(
        "thriller",
        "crime",
        "spies;global conspiracy;espionage;assassins;betrayal;ticking clocks;car chases;double agents",
        "Protocol Cipher Target Agent",
    ),
    _t(
        "cozy mystery",
        "crime",
        "village gossip;amateur sleuths;tea shops;whodunits;clever cats;quaint inns;harmless poisonings",
        "Teacup Parish Cottage Murder",
    ),
    _t(
        "true crime",
        "crime",
        "real murders;police investigations;forensic evidence;courtroom trials;cold cases;serial killers;interviews",
        "Verdict Evidence Case Killer",
    ),
    _t(
        "romance",
        "fiction",
        "love stories;slow-burn courtship;heartbreak;second chances;weddings;enemies to lovers;swoon-worthy chemistry",
        "Heart Kiss Summer Promise",
    ),
    _t(
        "classic literature",
        "fiction",
        "victorian society;moral dilemmas;sweeping family sagas;austen-style manners;social satire;timeless prose",
        "Estate Pride Letters Manor",
    ),
    _t(
        "poetry",
        "fiction",
        "verse;sonnets;lyrical imagery;free verse;rhythm;quiet reflection",
        "Songs Verses Elegy Hymns",
    ),
    _t(
        "cooking",
        "food",
        "weeknight recipes;seasonal vegetables;spices;slow braises;pantry staples;family dinners;regional cuisine",
        "Kitchen Table Skillet Feast",
    ),
    _t(
        "baking",
        "food",
        "sourdough bread;pastry;layer cakes;cookies;laminated dough;flour;frosting techniques;croissants",
        "Oven Crumb Loaf Butter",
    ),
    _t(
        "gardening",
        "outdoors",
        "vegetable beds;perennials;compost;seedlings;pruning;healthy soil;cottage gardens;pollinators",
        "Garden Seed Bloom Harvest",
    ),
    _t(
        "nature writing",
        "outdoors",
        "wilderness;birdwatching;old forests;mountain walks;changing seasons;rivers;wild animals",
        "River Wild Forest Birdsong",
    ),
    _t(
        "travel writing",
        "outdoors",
        "long journeys;train rides;backroads;foreign cities;street food;wanderlust;local customs",
        "Road Journey Passage Atlas",
    ),
    _t(
        "popular science",
        "ideas",
        "physics;evolution;the cosmos;the human brain;experiments;discoveries;genetics;climate",
        "Universe Origins Gene Quantum",
    ),
    _t(
        "philosophy",
        "ideas",
        "ethics;stoicism;the meaning of life;free will;consciousness;virtue;logic and reason",
        "Meditations Reason Virtue Mind",
    ),
    _t(
        "self-help",
        "practical",
        "habits;productivity;mindset;motivation;goal setting;resilience;mindfulness;confidence",
        "Habits Focus Mindset Reset",
    ),
    _t(
        "business",
        "practical",
        "startups;leadership;markets;investing;negotiation;strategy;management;entrepreneurs",
        "Leader Capital Market Startup",
    ),
    _t(
        "wwii history",
        "history",
        "wartime britain;the blitz;codebreakers;resistance fighters;normandy landings;"
        "generals;battle campaigns;the home front",
        "War Blitz Front Battle",
    ),
    _t(
        "music biography",
        "history",
        "rock bands;jazz legends;world tours;recording studios;album stories;fame and excess;musicians' lives",
        "Encore Riff Record Tour",
    ),
    _t(
        "graphic novels",
        "visual",
        "comics;superheroes;striking artwork;manga;panel layouts;antiheroes;visual storytelling",
        "Panel Ink Hero Saga",
    ),
    _t(
        "children's picture books",
        "visual",
        "bedtime stories;talking animals;colorful illustrations;gentle rhymes;friendship;first words",
        "Bunny Moon Bear Little",
    ),
)

ADJECTIVES = (  # noqa: SIM905
    "Silent Last Hidden Golden Broken Secret Long Bright Lost Quiet Crimson Wild "
    "Distant Little Final Winter Burning Second Forgotten Iron Gentle Northern"
).split()

USER_OPENERS = (
    "This reader gravitates to {t}, enjoying {w}.",
    "This user mostly reads {t} and keeps coming back to {w}.",
    "A reader with a clear taste for {t}; they look for {w}.",
    "Their shelf is dominated by {t}, especially books about {w}.",
    "This reader is drawn to {t} and seems to love {w}.",
)
USER_MINOR = (
    "They also dip into {t} now and then.",
    "Occasionally they pick up {t}, for example books on {w}.",
    "A smaller share of their reading is {t}.",
)
USER_NEGATIVE = (
    "They are unlikely to enjoy {t}.",
    "{T} does not seem to appeal to them.",
    "They rarely touch {t}.",
)
ITEM_TEMPLATES = (
    '"{title}" is a {t} book about {w}. Readers who like {r} will enjoy it.',
    "A {t} title about {w}. It suits readers who enjoy {r}.",
    'This {t} book, "{title}", explores {w}. Fans of {r} will find it appealing.',
    'The {t} book "{title}" centres on {w}; a good pick for readers of {r}.',
)
