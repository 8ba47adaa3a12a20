"""Products named only by a code: probable CAR trials whose record never says "CAR" (issue 13, part 1).

Many registrations of CAR products name them only by a development code ("BG1805 Injection",
"KITE-197", "HY001N cell injection"): the CAR is in the company's pipeline, not in the record.
A curator reads such a record through three questions, and so does this rule:

- Is the studied intervention a code-named product?  A token of letters and digits in an
  intervention name ("IASO208", "UB-VV500", "RC19D2"), not an antigen, dose level or recognisable
  drug; in older records an intervention of engineered or antigen-specific T cells ("genetically
  engineered lymphocyte therapy", "HER2/EBV-CTLs") that names no receptor.
- Whose is it?  The lead sponsor or a collaborator is a CAR developer (``developers.csv``), or the
  code starts with a prefix a developer gives its CAR products (``code_prefixes.csv``: "IASO" of
  IASO Bio, "FKC" of Fosun Kite, "KITE" of Kite), which names the developer of an
  investigator-initiated trial sponsored by a hospital.
- Does the record show a cell therapy?  Lymphodepletion, a cell injection, gene transfer, apheresis,
  bridging therapy, CRS/ICANS grading, a single infusion (``cell_therapy_signals.csv``): found and
  kept as evidence.

A developer alone is not proof: Regeneron, Amgen, Takeda or Janssen also develop antibodies, small
molecules and other cell products under codes (Takeda's GDX012 is a γδ T-cell product without a CAR,
given after lymphodepletion).  So a code of a developer whose clinical products are all CAR cell
products (``pipeline`` ``car`` in ``developers.csv``), or a code with a developer's CAR prefix, is
enough; a code of any other developer needs a sign that the cells are gene-modified (gene transfer,
bridging therapy while they are made), and an intervention that names engineered cells is one.
Either way the answer is a probable CAR trial with low confidence and the flag ``PROBABLE``, which
puts it in the review queue.  A code of a developer of other products too, in a record with some
sign of a cell therapy but none of gene modification, stays ``none`` with the flag ``UNCOUNTED``,
so that it is asked about rather than silently dropped; with no sign at all it is a drug code and
is not asked about.  A record that names another engineered product (TCR-T, TIL, a bispecific
antibody, STAR-T) or a T-cell receptor is never read this way.

Long-term follow-up studies of a developer's products that name no product ("Long-Term Follow-up
Study" of "investigational Caribou therapies") are read the same way, as ``follow_up``.

Every record without a CAR word reaches this rule (most records of a registry), so its cheapest
questions come first: a developer among the sponsors, or a developer's prefix in the text.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, replace

from cartatlas.classify.context import POSITIVE, Context, Mention
from cartatlas.classify.knowledge import Developer, Entry
from cartatlas.classify.text import ELIGIBILITY, INTERVENTION, TITLE, Hit, Segment

D = "relation"
#: Flag of a relation read from a code name of a CAR developer (therapy or follow_up, low confidence).
PROBABLE = "relation:probable-car-from-code-name"
#: Flag of a code-named product of a CAR developer that the rules did not count (no sign of gene modification).
UNCOUNTED = "relation:code-name-of-car-developer"

#: A development code: letters (a second group after a dash: "UB-VV500"), digits, an optional letter tail
#: ("HY001N", "RC19D2", "UCL70805F").  Matched on the display text: codes are written in capitals.
_CODE = re.compile(
    r"(?<![A-Za-z0-9])(?P<code>(?P<letters>[A-Za-z]{1,6}(?:-[A-Za-z]{1,4})?)[- ]?(?P<digits>\d{1,8})"
    r"[A-Za-z]{0,2}\d{0,3})(?![A-Za-z0-9])"
)
#: Letter parts that make a number something other than a product code.
_NOT_CODES = frozenset(
    " ".join(
        (
            "cd il pd covid sars cov hla ctla day days dose doses level levels dl arm arms part cohort cohorts",
            "group groups phase stage grade cycle cycles week weeks month months year years q v visit version",
            "no nr n step type class ctcae ecog who iso hiv hbv hcv hpv ebv cmv dlt mtd rp tnm figo gm g car",
            "cart t nk b x fig table ref lot mg ml kg h hr hrs min ad da cr pr sd ii iii iv vi ip im sc po bid",
            "tid qd qw qod ld e f",  # "F-18" is a tracer, "T-60" a time point
        )
    ).split()
)
#: An intervention name that is a drug: an INN stem, as in ``relation._INN_DRUG``.
_DRUG = re.compile(
    r"(?:mab|nib|ciclib|lisib|parib|zomib|tide|platin|taxel|rubicin|domide|stat|tinib|asone|olone|leukin|cept|"
    r"sertib|rafenib|limus|citabine|arabine|trexate|mustine|cillin|mycin|vudine|azole|mide|phamide|abine)(?![a-z])|"
    r"antibod|vaccine|yttrium|radiolabel"
)
_PARTS = re.compile(r"\s*(?:\+|,|;|/| and | with | plus |±)\s*")
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True, slots=True)
class Code:
    """A code name in an intervention name or title, and the developer it points to (if any)."""

    text: str
    seg: Segment
    start: int
    end: int
    #: How the developer was found: ``prefix`` (code_prefixes.csv) or ``sponsor`` (developers.csv).
    how: str = ""
    developer: Developer | None = None
    #: The prefix, or the sponsor field and name, that links the code to its developer.
    link: str = ""
    #: An intervention that names engineered (or antigen-specific) cells rather than a code.
    engineered: bool = False


def code_names(ctx: Context) -> list[Code]:
    """Code names of the studied products: in intervention names, or the title when no intervention names one."""
    out: list[Code] = []
    titles: list[Segment] = []
    for seg in ctx.segments:
        if seg.role == INTERVENTION:
            out += _codes_in(ctx, seg)
        elif seg.role == TITLE:
            titles.append(seg)
    if not out:
        for seg in titles:
            out += _codes_in(ctx, seg)
    return out


#: An intervention of engineered immune cells named without a receptor ("genetically engineered lymphocyte
#: therapy", "engineered autologous T cells", "Genetically Modified T cells"), as older CAR trials of
#: academic developers write them.
_ENGINEERED_CELLS = re.compile(
    r"(?<![a-z])(?:engineered|modified|transduced|redirected|re directed|gene modified)(?![a-z])[^.;]{0,30}?"
    r"(?<![a-z])(?:lymphocytes?|t ?cells?|nk ?cells?|ctls?)(?![a-z])"
)
#: T cells specific for an antigen of the table, as an intervention ("TGFBeta resistant HER2/EBV-CTLs").
_ANTIGEN_T_CELLS = re.compile(r"(?<![a-z])(?:ctls?|t ?cells?|t lymphocytes|cytotoxic t)(?![a-z])")
#: Antigens that T-cell receptors recognise as peptides more often than CARs recognise them on the surface.
_PEPTIDE_ANTIGENS = frozenset({"NY-ESO-1", "AFP", "LMP1"})


def engineered_products(ctx: Context) -> list[Code]:
    """Interventions of engineered or antigen-specific T cells that name no receptor at all."""
    out: list[Code] = []
    antigen_segs = {
        id(h.seg) for h in ctx.of("antigen") if h.seg.role == INTERVENTION and h.entry.value not in _PEPTIDE_ANTIGENS
    }
    for seg in ctx.segments:
        if seg.role != INTERVENTION:
            continue
        norm = seg.norm
        if "cell" not in norm and "lymphocyte" not in norm and "ctl" not in norm:
            continue
        m = _ENGINEERED_CELLS.search(norm)
        if m is None and id(seg) in antigen_segs:
            m = _ANTIGEN_T_CELLS.search(seg.norm)
        if m is not None:
            out.append(Code(seg.disp, seg, 0, len(seg.disp), engineered=True))
    return out


def _codes_in(ctx: Context, seg: Segment) -> list[Code]:
    kb = ctx.kb
    text = seg.disp
    out: list[Code] = []
    if _DIGIT.search(text) is None:
        return out  # most intervention names ("Rituximab", "Placebo") hold no code at all
    cuts: list[int] | None = None
    for m in _CODE.finditer(text):
        letters = m.group("letters")
        first = letters.lower().split("-")[0]
        if first in _NOT_CODES or first.startswith("anti") or not any(c.isupper() for c in letters):
            continue
        if len(letters) == 1 and len(m.group("digits")) < 2:
            continue
        code = m.group("code")
        if kb.antigen_symbol(code) is not None or (len(letters) > 2 and kb.antigen_symbol(letters) is not None):
            continue  # an antigen ("CD19", "HER2", "GPC3") or an antigen with a number
        # The part of the name the code is in ("MT-304 + Nivolumab": two parts): a drug's code is not a product's
        # ("KD025 (Belumosudil)", "Tafasitamab (MOR208)").
        if cuts is None:
            cuts = [0, *(x for c in _PARTS.finditer(text) for x in (c.start(), c.end())), len(text)]
        lo = cuts[bisect.bisect_right(cuts, m.start()) - 1]
        hi = cuts[bisect.bisect_left(cuts, m.end())]
        if _DRUG.search(text[lo:hi].lower()):
            continue
        out.append(Code(code, seg, m.start("code"), m.end("code")))
    return out


def _prefix_somewhere(ctx: Context) -> bool:
    """Whether a developer's code prefix occurs in an intervention name or title."""
    text = "\n".join([seg.norm for seg in ctx.segments if seg.role == INTERVENTION or seg.role == TITLE])
    return ctx.kb.code_prefix_re.search(text) is not None


def _link(ctx: Context, code: Code) -> Code:
    found = None if code.engineered else ctx.kb.developer_of_code(code.text)
    if found is not None:
        prefix, dev = found
        return replace(code, how="prefix", developer=dev, link=prefix)
    for fld, name, dev in ctx.sponsor_developers():
        return replace(code, how="sponsor", developer=dev, link=f"{fld}: {name}")
    return code


#: A T-cell receptor named in a title or intervention: the engineered product is a TCR-T ("T Cell Receptor Gene
#: Therapy Targeting KK-LC-1").  A CAR's older names ("chimeric T cell receptor") are CAR words: a record with
#: one never reaches this rule.
_TCR = re.compile(r"(?<![a-z])(?:tcr|t cell receptors?)(?![a-z])")


def _other_engineered_product(ctx: Context) -> str | None:
    """A non-CAR engineered product or antibody named in the title or an intervention (TCR-T, TIL, STAR-T)."""
    for h in ctx.of("non_car"):
        if h.seg.role in (TITLE, INTERVENTION):
            return h.text
    for seg in ctx.segments:
        if seg.role != ELIGIBILITY:
            m = _TCR.search(seg.norm)
            if m is not None:
                return seg.disp[m.start() : m.end()]
    return None


#: Signs that the cell product is gene-modified (or made while the patient waits), not only a cell therapy.
_GENE_MODIFIED = frozenset({"gene_transfer", "bridging"})


def _enough(ctx: Context, dev: Developer, code: Code | None = None) -> tuple[bool, list[str]]:
    """Whether the record says enough for a product of this developer to be a CAR product, and the signs.

    A code with a developer's CAR prefix, or any code of a developer of CAR products only, is enough.  A
    developer of other products too (Takeda's GDX012 is a γδ T-cell product without a CAR, given after
    lymphodepletion) needs a sign that the cells are gene-modified: gene transfer, bridging therapy while
    they are made, or an intervention that names engineered cells.
    """
    signals = list(ctx.cell_signals())
    if dev.pipeline == "car" or (code is not None and (code.how == "prefix" or code.engineered)):
        return True, signals
    return bool(_GENE_MODIFIED & set(signals)), signals


def _evidence(ctx: Context, value: str, code: Code, dev: Developer, signals: list[str]) -> None:
    hit = Hit(Entry("code", code.text, "car", None, "codename"), code.start, code.end, code.seg)
    ctx.add(D, value, "relation.code_named_product_of_car_developer", hit)
    if code.how == "prefix":
        ctx.add(
            D,
            value,
            "relation.code_prefix_of_car_developer",
            field="code_prefixes.csv",
            text=f"{code.link}: {dev.name}",
        )
    else:
        fld, _, name = code.link.partition(": ")
        ctx.add(D, value, "relation.sponsor_is_car_developer", field=fld, text=name)
    if dev.pipeline == "car":
        ctx.add(D, value, "relation.developer_of_car_products_only", field="developers.csv", text=dev.name)
    _signal_evidence(ctx, value, signals)


def _signal_evidence(ctx: Context, value: str, signals: list[str]) -> None:
    found = ctx.cell_signals()
    for s in signals:
        h = found.get(s)
        if h is not None:
            ctx.add(D, value, "relation.cell_therapy_signal", field=h.seg.field, text=f"{s}: {h.text}")


def _mention(code: Code, dev: Developer) -> Mention:
    hit = Hit(Entry("code", code.text, "car", None, "codename"), code.start, code.end, code.seg)
    platform = dev.platforms[0] if len(dev.platforms) == 1 else ""
    return Mention(hit, POSITIVE, "", platform, None, "code-name")


def decide(ctx: Context) -> tuple[str, str] | None:
    """therapy or follow_up (low confidence) from a code name of a CAR developer; None when the rule says nothing.

    Called for a record with no CAR mention at all.  When it decides, the code becomes the trial's CAR
    mention (``ctx.mentions``), so that targets, platform and source are read around it.
    """
    # Every record without a CAR word comes here (most records of a registry): the cheap questions first.
    follow = _follow_up(ctx)
    if follow is not None:
        return follow
    # A code points to a developer by its prefix or by the sponsor: without a developer among the sponsors, only
    # a text where a developer's prefix occurs can hold one.
    codes = code_names(ctx) if ctx.sponsor_developers() or _prefix_somewhere(ctx) else []
    if codes:
        linked = [c for c in (_link(ctx, c) for c in codes) if c.developer is not None]
    elif not ctx.sponsor_developers():
        return None
    else:
        # Older records: engineered T cells of an academic CAR developer, with no code and no receptor named.
        engineered = engineered_products(ctx)
        linked = [c for c in (_link(ctx, e) for e in engineered) if c.how == "sponsor"] if engineered else []
    if not linked or _other_engineered_product(ctx) is not None:
        return None
    # A prefix names the product's own developer; a sponsor only says who runs the trial.
    linked.sort(key=lambda c: (c.how != "prefix", c.developer.pipeline != "car" if c.developer else True))
    code = linked[0]
    dev = code.developer
    assert dev is not None
    enough, signals = _enough(ctx, dev, code)
    if not enough:
        # A developer of many kinds of products names its drugs by codes too: asked about only when the
        # record shows some sign of a cell therapy, or when the samples say too little about the developer.
        if signals or dev.pipeline == "unknown":
            hit = Hit(Entry("code", code.text, "car", None, "codename"), code.start, code.end, code.seg)
            ctx.add(D, "none", "relation.code_name_without_enough_signs", hit)
            _signal_evidence(ctx, "none", signals)
            ctx.flag(UNCOUNTED)
        return None
    _evidence(ctx, "therapy", code, dev, signals)
    if code.engineered:
        ctx.add(D, "therapy", "relation.engineered_cells_named", field=code.seg.field, text=code.text)
    ctx.mentions.append(_mention(code, dev))
    ctx.flag(PROBABLE)
    return "therapy", "low"


def _follow_up(ctx: Context) -> tuple[str, str] | None:
    """Long-term follow-up of a CAR developer's products, named by no product ("Long-Term Follow-up Study")."""
    cues = [h for h in ctx.of("follow_up") if h.seg.role == TITLE]
    if not cues:
        return None
    sponsors = ctx.sponsor_developers()
    if not sponsors or _other_engineered_product(ctx) is not None:
        return None
    fld, name, dev = sponsors[0]
    enough, signals = _enough(ctx, dev)
    if not enough:
        return None
    ctx.add(D, "follow_up", "relation.long_term_follow_up", cues[0])
    ctx.add(D, "follow_up", "relation.sponsor_is_car_developer", field=fld, text=name)
    if dev.pipeline == "car":
        ctx.add(D, "follow_up", "relation.developer_of_car_products_only", field="developers.csv", text=dev.name)
    _signal_evidence(ctx, "follow_up", signals)
    hit = cues[0]
    platform = dev.platforms[0] if len(dev.platforms) == 1 else ""
    ctx.mentions.append(Mention(hit, POSITIVE, "", platform, None, "code-name"))
    ctx.flag(PROBABLE)
    return "follow_up", "low"
