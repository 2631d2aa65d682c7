"""Generate the sample corpus in ``sample_docs/``.

About the documents
-------------------
``sample_docs/`` holds a small, entirely fictional corpus about "Lumen
Outfitters", an outdoor gear shop. It is used by the README quick start
(e.g. "what is the refund policy?"), examples and tests. All text is original
and written for this project. The set deliberately mixes formats and languages
so that every loader and the heading-aware chunker get exercised:

=========================  ========  ====================================
file                       language  content
=========================  ========  ====================================
handbook.md                en        returns & refunds, shipping, warranty
faq.txt                    en        store hours, gift cards, Trailpoints
product-care.html          en        tents, down jackets, boots (+ table)
onboarding.docx            en        first week, badge, payroll (+ table)
safety-report.pdf          en        Q2 safety summary, 2 pages, numbers
expense-policy-ja.md       ja        経費精算規程
remote-work-ko.txt         ko        재택근무 정책
store-guide-ja.html        ja        店舗ガイド
benefits-ko.docx           ko        복리후생 안내
ko-ja-notice.pdf           ja + ko   one-page bilingual notice
=========================  ========  ====================================

Do not add a README inside ``sample_docs/``: everything there gets indexed.

Usage::

    python scripts/make_sample_docs.py            # (re)write all files
    python scripts/make_sample_docs.py --check    # also verify text extraction

Requirements: python-docx, reportlab (PDF generation), pypdfium2 (for --check).
The CJK PDF uses reportlab's built-in CID fonts (HeiseiMin-W3 for Japanese,
HYSMyeongJo-Medium for Korean). They are not embedded, which keeps the file
tiny; the text layer is proper Unicode (verified with pypdfium2 and pypdf).
Output is deterministic: reportlab runs in "invariant" mode and the DOCX zip
entries get fixed timestamps.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "sample_docs"
FIXED_DT = _dt.datetime(2024, 7, 1, 9, 0, 0)

# ---------------------------------------------------------------------------
# Text documents
# ---------------------------------------------------------------------------

HANDBOOK_MD = """\
# Lumen Outfitters Customer Handbook

This handbook explains how Lumen Outfitters handles returns, refunds,
shipping and warranty claims. It applies to purchases made in our three
stores (Portland, Bend and Boise) and on lumenoutfitters.example.

## Returns and Refunds

### Return window

You may return most unused items within 45 days of purchase. Items must be
clean, undamaged and, where possible, in their original packaging with tags
attached. Footwear must show no signs of outdoor wear on the soles.

### Refunds with a receipt

If you have a receipt or an online order number, we refund the full purchase
price to the original payment method. Card refunds are issued within 7
business days of the day we receive the item. Your bank may need a few extra
days to show the credit on your statement. Cash purchases are refunded in
cash at the till, up to 300 USD; larger cash refunds are sent by cheque.

### Returns without a receipt

Without a receipt we can only offer store credit, valued at the lowest
selling price of the item in the last 60 days. Store credit is loaded onto a
Lumen gift card and never expires. A photo ID is required for returns without
a receipt, and each customer is limited to three such returns per year.

### Final-sale items

The following items are final sale and cannot be returned or exchanged:

- items marked "Final Sale" or bought from the clearance rack;
- opened fuel canisters, stove fuel and bear spray;
- custom-cut rope and webbing;
- swimwear and underwear with the hygiene seal removed.

### Exchanges

Exchanges for a different size or colour are free within the 45-day window.
If the new item costs more, you pay the difference; if it costs less, we
refund the difference to the original payment method.

## Shipping

Orders placed before 1 p.m. Pacific time on a business day ship the same day
from our Portland warehouse. Standard shipping (3 to 6 business days) is free
on orders over 75 USD and costs 6.95 USD otherwise. Express shipping (1 to 2
business days) costs 18 USD. We ship to all 50 US states but not to PO boxes
for orders containing stove fuel.

Return shipping is free when you use the prepaid label from your order
confirmation email. The label cost is not deducted from your refund.

## Warranty

Every product sold under the Lumen brand carries a two-year warranty against
defects in materials and workmanship. Tents and backpacks are covered for
five years. The warranty does not cover normal wear, damage from misuse,
or repairs made by third parties.

To make a claim, bring the item to any store or email
warranty@lumenoutfitters.example with photos of the defect and your order
number. We repair the item when we can; if a repair is not possible we
replace it, or issue store credit if the model is discontinued. Claims are
usually resolved within 14 days.
"""

FAQ_TXT = """\
LUMEN OUTFITTERS - FREQUENTLY ASKED QUESTIONS
=============================================

Store Hours
-----------

Q: When are your stores open?
A: All three stores (Portland, Bend and Boise) are open Monday to Saturday
from 9:00 a.m. to 8:00 p.m. and on Sunday from 10:00 a.m. to 6:00 p.m.

Q: Are you open on holidays?
A: We close on Thanksgiving Day, Christmas Day and New Year's Day. On
Christmas Eve and New Year's Eve every store closes early, at 4:00 p.m.

Q: Can I book a gear fitting?
A: Yes. Boot and backpack fittings can be booked online in 30-minute slots.
Fittings are free and take place on weekday mornings.

Gift Cards
----------

Q: What gift cards do you sell?
A: We sell physical gift cards in our stores and e-gift cards on our
website. Any amount from 10 USD to 500 USD can be loaded.

Q: Do gift cards expire?
A: No. Lumen gift cards never expire and carry no service fees.

Q: Can I check my gift card balance?
A: Enter the 16-digit card number on the gift card page of our website, or
ask any cashier. Lost cards can be replaced if you still have the purchase
receipt.

Q: Can I use a gift card online?
A: Yes. Gift cards work in all stores and online, and you can combine up to
three gift cards on a single order.

Trailpoints Loyalty Programme
-----------------------------

Q: What is Trailpoints?
A: Trailpoints is our free loyalty programme. Members earn 1 point for every
dollar spent, and 500 points turn into a 10 USD reward voucher.

Q: Are there membership levels?
A: There are two levels. Members who spend more than 1,000 USD in a calendar
year reach the Summit level, which earns 1.5 points per dollar and includes
free express shipping.

Q: Do points expire?
A: Points expire 18 months after they are earned. Reward vouchers are valid
for 90 days.

Q: What happens to points when I return an item?
A: Points earned on a returned item are removed from your account. If the
balance would become negative, the missing points are taken from your next
purchase.

Q: How do I join?
A: Sign up at the till with your email address or phone number, or create an
account on our website. Joining takes about a minute.
"""

PRODUCT_CARE_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Product Care Guide - Lumen Outfitters</title>
</head>
<body>
<h1>Product Care Guide</h1>
<p>Good care makes outdoor gear last for many seasons. This guide covers the
three items our repair desk sees most often: tents, down jackets and hiking
boots. Following it also keeps your Lumen warranty valid.</p>

<h2>Tents</h2>
<p>Always pitch a new tent once at home before your first trip, so you know
every pole and buckle. After each trip, shake out sand and leaves and let the
tent dry completely before packing it away. A tent stored damp for even two
days can grow mildew, which stains the fabric and breaks down the waterproof
coating.</p>
<p>Clean the fly and the floor with lukewarm water and a sponge. Never put a
tent in a washing machine and never use detergent. Store it loosely in a
large cotton sack rather than in its tight stuff sack.</p>

<h2>Down Jackets</h2>
<p>Wash a down jacket only two or three times a year, using a special down
wash and a front-loading machine on a gentle cycle at 30 &deg;C. Rinse twice to
remove all soap. Tumble-dry on low heat with three clean tennis balls, which
break up clumps of down; a full dry can take three hours.</p>
<p>Between seasons, hang the jacket in a dry closet. Keeping it compressed in
its pouch for months flattens the down and reduces warmth.</p>

<h2>Boots</h2>
<p>Remove the insoles and laces after muddy hikes and rinse the boots with
clean water. Dry them at room temperature with newspaper inside; never place
them next to a heater or fire, as heat cracks leather and weakens glue.
Re-apply a waterproofing treatment when water no longer beads on the
surface.</p>

<h2>Care at a Glance</h2>
<table>
<thead>
<tr><th>Item</th><th>Cleaning</th><th>Drying</th><th>Storage</th></tr>
</thead>
<tbody>
<tr><td>Tent</td><td>Sponge and lukewarm water, no detergent</td>
<td>Air-dry fully, in shade</td><td>Loose in a cotton sack</td></tr>
<tr><td>Down jacket</td><td>Down wash, gentle cycle at 30 &deg;C</td>
<td>Low heat with tennis balls</td><td>Hanging, uncompressed</td></tr>
<tr><td>Boots</td><td>Rinse with clean water, brush off mud</td>
<td>Room temperature, newspaper inside</td><td>Cool, dry shelf</td></tr>
</tbody>
</table>

<h2>Repair Service</h2>
<p>Our repair desk in Portland fixes broken zips, torn fly sheets and worn
boot soles. Most repairs are finished within ten days.</p>
</body>
</html>
"""

EXPENSE_POLICY_JA_MD = """\
# 経費精算規程

本規程は、ルーメン・アウトフィッターズの従業員が業務のために立て替えた費用の精算方法を定めるものである。

## 第1章 総則

### 対象となる費用

業務上必要と認められる交通費、宿泊費、会議費および消耗品費を精算の対象とする。私的な目的を含む支出は対象外とする。

### 領収書

すべての支出について領収書の原本または電子領収書を提出すること。領収書を紛失した場合は、所属長の承認を得たうえで支払証明書を提出する。

## 第2章 交通費

### 公共交通機関

出張および顧客訪問の移動には、原則として電車またはバスを利用する。新幹線は片道100キロメートルを超える移動に限り普通車指定席の利用を認める。

### タクシー

タクシーの利用は、深夜22時以降の移動、重い展示用品の運搬、または公共交通機関がない場合に限る。1回あたりの上限は5,000円とする。

## 第3章 宿泊費

宿泊費の上限は1泊あたり、東京都および大阪市内では12,000円、その他の地域では9,000円とする。上限を超える場合は、事前に部長の承認を得なければならない。朝食代は宿泊費に含めて精算してよい。

## 第4章 申請手続き

### 申請期限

経費の申請は、支出した月の翌月10日までに経費精算システムから行う。期限を過ぎた申請は、正当な理由がない限り受け付けない。

### 承認と支払い

申請は所属長が5営業日以内に承認する。承認された経費は、毎月25日の給与と合わせて指定口座に振り込まれる。

## 附則

本規程は2024年4月1日から施行する。
"""

REMOTE_WORK_KO_TXT = """\
재택근무 정책
============

루멘 아웃피터스 본사 직원을 위한 재택근무 정책입니다. 매장 근무자는 이 정책의 적용 대상이 아닙니다.

1. 적용 대상
------------

입사 후 3개월이 지난 본사 정규직 직원은 누구나 재택근무를 신청할 수 있습니다. 재택근무는 주 최대 3일까지 허용됩니다.

2. 신청 방법
------------

재택근무를 원하는 직원은 사내 인사 시스템에서 신청서를 작성해야 합니다. 신청은 재택근무 희망 주의 전주 금요일 오후 3시까지 제출해야 합니다. 팀장은 2영업일 이내에 승인 여부를 결정합니다. 정기적인 재택근무는 분기마다 다시 신청해야 합니다.

3. 근무 시간
------------

재택근무일의 핵심 근무 시간은 오전 10시부터 오후 4시까지입니다. 이 시간에는 메신저와 전화로 항상 연락이 가능해야 합니다. 하루 근무 시간은 사무실 근무와 동일하게 8시간이며, 점심시간 1시간은 근무 시간에 포함되지 않습니다. 초과 근무는 팀장의 사전 승인을 받은 경우에만 인정됩니다.

4. 보안 규칙
------------

회사 노트북만 업무에 사용해야 하며, 개인 컴퓨터로 회사 시스템에 접속하는 것은 금지됩니다. 사내 시스템에 접속할 때는 반드시 회사 VPN을 사용해야 합니다. 카페나 공항 등 공용 와이파이에서는 고객 정보를 열람할 수 없습니다. 자리를 비울 때는 화면을 잠가야 하며, 업무 문서는 출력하지 않는 것을 원칙으로 합니다. 노트북을 분실한 경우 즉시 IT 지원팀에 신고해야 합니다.

5. 장비 지원
------------

재택근무자에게는 모니터 1대와 키보드, 마우스가 지급됩니다. 인터넷 요금은 매월 3만 원까지 지원됩니다.

6. 문의
-------

정책에 관한 문의는 인사팀으로 연락해 주시기 바랍니다.
"""

STORE_GUIDE_JA_HTML = """\
<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="utf-8">
<title>店舗ガイド - ルーメン・アウトフィッターズ</title>
</head>
<body>
<h1>店舗ガイド</h1>
<p>ルーメン・アウトフィッターズの店舗をご利用いただく際のご案内です。</p>

<h2>フロア案内</h2>
<p>1階ではテント、寝袋、調理器具を販売しています。2階はウェア、登山靴、バックパックの売り場です。登山靴の試し履き用スロープは2階の奥にございます。</p>

<h2>レンタルサービス</h2>
<p>テントと寝袋のレンタルを行っています。料金はテントが1泊2,000円、寝袋が1泊800円です。ご予約は3日前までにお願いいたします。</p>

<h2>駐車場</h2>
<p>店舗裏手に20台分の無料駐車場がございます。5,000円以上お買い上げのお客様は、提携駐車場も2時間まで無料でご利用いただけます。</p>
</body>
</html>
"""

TEXT_FILES = {
    "handbook.md": HANDBOOK_MD,
    "faq.txt": FAQ_TXT,
    "product-care.html": PRODUCT_CARE_HTML,
    "expense-policy-ja.md": EXPENSE_POLICY_JA_MD,
    "remote-work-ko.txt": REMOTE_WORK_KO_TXT,
    "store-guide-ja.html": STORE_GUIDE_JA_HTML,
}

# ---------------------------------------------------------------------------
# DOCX documents: list of (kind, payload); kind in h1/h2/p/bullet/table
# ---------------------------------------------------------------------------

ONBOARDING_DOCX = [
    ("title", "Employee Onboarding Guide"),
    (
        "p",
        "Welcome to Lumen Outfitters. This guide walks new team members "
        "through their first week, explains how to get a security badge "
        "and lists the payroll dates for the year.",
    ),
    ("h1", "Your First Week"),
    ("h2", "Day One"),
    (
        "p",
        "Please arrive at the Portland head office at 8:30 a.m. on your "
        "first day and ask for the People team at reception. You will "
        "receive your laptop, sign your employment documents and meet your "
        "onboarding buddy, a colleague from another team who answers "
        "everyday questions during your first month.",
    ),
    ("h2", "Days Two to Five"),
    (
        "p",
        "The rest of the week mixes training and shadowing. Every new "
        "employee, including office staff, spends one full day on the shop "
        "floor of the Portland store to learn how customers use our gear.",
    ),
    ("bullet", "Day 2: product training on tents, packs and footwear."),
    ("bullet", "Day 3: a full shift on the Portland store floor."),
    ("bullet", "Day 4: systems training (email, the HR portal, the expense tool)."),
    ("bullet", "Day 5: a one-to-one review with your manager to set 90-day goals."),
    ("h1", "Security Badge"),
    ("h2", "Getting Your Badge"),
    (
        "p",
        "Security badges are printed by the facilities desk on the ground "
        "floor. Bring a government-issued photo ID; the photo for the badge "
        "is taken on the spot. Badges are usually ready within one hour.",
    ),
    ("h2", "Using Your Badge"),
    (
        "p",
        "Your badge opens the office doors between 6:00 a.m. and 10:00 p.m. "
        "on weekdays. The warehouse and the server room need extra access, "
        "which your manager can request. Never lend your badge to anyone. "
        "A lost badge must be reported to facilities the same day, and a "
        "replacement costs 15 USD.",
    ),
    ("h1", "Payroll"),
    (
        "p",
        "Employees are paid twice a month by direct deposit. When a pay "
        "date falls on a weekend or a public holiday, salaries are paid on "
        "the previous business day. Timesheets for hourly staff must be "
        "submitted by noon on the Monday after each pay period ends.",
    ),
    (
        "table",
        [
            ["Pay period", "Period covered", "Pay date"],
            ["First half", "1st to 15th of the month", "20th of the same month"],
            ["Second half", "16th to last day of the month", "5th of the next month"],
        ],
    ),
    ("h2", "Questions About Pay"),
    (
        "p",
        "Payslips are available in the HR portal two days before each pay "
        "date. Contact payroll@lumenoutfitters.example if something looks "
        "wrong.",
    ),
]

BENEFITS_KO_DOCX = [
    ("title", "복리후생 안내"),
    ("p", "루멘 아웃피터스 직원에게 제공되는 주요 복리후생을 안내합니다."),
    ("h1", "휴가"),
    (
        "p",
        "정규직 직원은 입사 첫해에 15일의 연차 휴가를 받습니다. 근속 3년마다 연차가 하루씩 늘어납니다. "
        "생일이 있는 달에는 유급 휴가 하루가 추가로 주어집니다.",
    ),
    ("h1", "건강 지원"),
    (
        "p",
        "회사는 매년 종합 건강검진 비용을 전액 부담합니다. 배우자의 건강검진 비용은 50퍼센트를 지원합니다.",
    ),
    ("h1", "직원 할인"),
    ("h2", "할인율"),
    ("p", "모든 직원은 매장과 온라인에서 상품을 40퍼센트 할인된 가격으로 구매할 수 있습니다."),
    (
        "table",
        [
            ["대상", "할인율", "연간 한도"],
            ["직원 본인", "40%", "300만 원"],
            ["가족", "20%", "100만 원"],
        ],
    ),
    ("h2", "아웃도어 활동 지원"),
    ("p", "등산, 캠핑 등 아웃도어 교육 과정 수강료는 연 50만 원까지 지원됩니다."),
]

# ---------------------------------------------------------------------------
# PDF documents
# ---------------------------------------------------------------------------

SAFETY_P1 = [
    ("h1", "Quarterly Safety Summary: Q2 2024"),
    (
        "p",
        "Prepared by the Lumen Outfitters Health and Safety Committee for "
        "all stores and the Portland warehouse. Reporting period: 1 April "
        "to 30 June 2024.",
    ),
    ("h2", "1. Overview"),
    (
        "p",
        "The second quarter was our busiest spring season to date, with "
        "48,300 hours worked across three stores and the warehouse, up 12% "
        "on Q1. Despite the higher workload, the number of recordable "
        "injuries fell from 5 in Q1 to 3 in Q2. No injury required a "
        "hospital stay, and the total number of lost working days was 6.",
    ),
    (
        "p",
        "The recordable injury rate, calculated per 200,000 hours worked, "
        "dropped from 2.3 in Q1 to 1.2 in Q2. This is the lowest rate since "
        "the committee began tracking it in 2021.",
    ),
    ("h2", "2. Incidents by Location"),
    (
        "table",
        [
            ["Location", "Hours worked", "Near misses", "Recordable injuries", "Lost days"],
            ["Portland store", "14,200", "4", "1", "0"],
            ["Bend store", "9,100", "2", "0", "0"],
            ["Boise store", "8,600", "3", "0", "0"],
            ["Portland warehouse", "16,400", "9", "2", "6"],
            ["Total", "48,300", "18", "3", "6"],
        ],
    ),
    (
        "p",
        "The warehouse accounted for both lost-time injuries. One was a "
        "back strain while lifting a boxed kayak; the other was a hand cut "
        "from a box cutter during unpacking.",
    ),
]

SAFETY_P2 = [
    ("h2", "3. Near Misses"),
    (
        "p",
        "Staff reported 18 near misses, compared with 11 in Q1. The "
        "committee sees the rise as a positive sign: reporting was made "
        "easier in April with a QR code form posted in every stockroom. "
        "Half of the near misses (9) involved items stacked above shoulder "
        "height on warehouse shelving.",
    ),
    ("h2", "4. Training"),
    (
        "p",
        "By 30 June, 142 of 150 employees (95%) had completed the annual "
        "manual handling course. Twelve warehouse staff received forklift "
        "refresher training, and 20 store employees earned first aid "
        "certificates. The climbing wall in the Portland store passed its "
        "independent inspection on 14 May with no findings.",
    ),
    ("h2", "5. Actions for Q3"),
    ("bullet", "Install lift-assist trolleys for kayaks and canoes in the warehouse by 31 July."),
    ("bullet", "Replace all box cutters with self-retracting safety knives."),
    (
        "bullet",
        "Limit shelf stacking to shoulder height and relabel the top racks as overflow only.",
    ),
    ("bullet", "Reach 100% completion of manual handling training by 30 September."),
    ("h2", "6. Contact"),
    (
        "p",
        "Questions about this report can be sent to the Health and Safety "
        "Committee at safety@lumenoutfitters.example. The next summary "
        "will be published in October 2024.",
    ),
]

NOTICE_TITLE = "重要なお知らせ / 중요 공지"
NOTICE_JA = [
    ("h2", "日本語"),
    (
        "p",
        "ルーメン・アウトフィッターズ各店舗は、棚卸しのため2024年9月3日（火）を臨時休業とさせていただきます。",
    ),
    (
        "p",
        "オンラインストアは通常どおり営業いたします。休業日にいただいたご注文は、翌日に発送いたします。",
    ),
    ("p", "ご不便をおかけしますが、ご理解のほどよろしくお願い申し上げます。"),
]
NOTICE_KO = [
    ("h2", "한국어"),
    ("p", "루멘 아웃피터스 전 매장은 재고 조사를 위해 2024년 9월 3일(화) 하루 임시 휴업합니다."),
    ("p", "온라인 스토어는 평소와 같이 운영됩니다. 휴업일에 접수된 주문은 다음 날 발송됩니다."),
    ("p", "이용에 불편을 드려 죄송합니다. 양해해 주셔서 감사합니다."),
]


# ---------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------


def _normalise_zip(data: bytes) -> bytes:
    """Rewrite a zip (DOCX) with fixed timestamps so output is reproducible."""
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED_DT.timetuple()[:6])
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, src.read(info.filename))
    return buf.getvalue()


def write_docx(path: Path, blocks, title: str, language: str) -> None:
    from docx import Document
    from docx.oxml.ns import qn
    from docx.shared import Pt

    doc = Document()
    if language != "en":
        # East-Asian font hint so Word renders Hangul/Kana nicely.
        style = doc.styles["Normal"]
        east_asian = {"ko": "Malgun Gothic", "ja": "Yu Gothic"}[language]
        rpr = style.element.get_or_add_rPr()
        rpr.get_or_add_rFonts().set(qn("w:eastAsia"), east_asian)
    for kind, payload in blocks:
        if kind == "title":
            doc.add_heading(payload, level=0)
        elif kind == "h1":
            doc.add_heading(payload, level=1)
        elif kind == "h2":
            doc.add_heading(payload, level=2)
        elif kind == "p":
            doc.add_paragraph(payload)
        elif kind == "bullet":
            doc.add_paragraph(payload, style="List Bullet")
        elif kind == "table":
            table = doc.add_table(rows=len(payload), cols=len(payload[0]))
            table.style = "Table Grid"
            for r, row in enumerate(payload):
                for c, value in enumerate(row):
                    cell = table.cell(r, c)
                    cell.text = value
                    if r == 0:
                        for run in cell.paragraphs[0].runs:
                            run.font.bold = True
                            run.font.size = Pt(11)
        else:
            raise ValueError(kind)
    props = doc.core_properties
    props.title = title
    props.author = "Lumen Outfitters"
    props.last_modified_by = "Lumen Outfitters"
    props.language = language
    props.created = FIXED_DT
    props.modified = FIXED_DT
    props.revision = 1
    buf = io.BytesIO()
    doc.save(buf)
    path.write_bytes(_normalise_zip(buf.getvalue()))


def _pdf_flowables(blocks, styles):
    from reportlab.lib import colors
    from reportlab.platypus import ListFlowable, ListItem, Paragraph, Spacer, Table, TableStyle

    out = []
    bullets = []

    def flush():
        if bullets:
            out.append(
                ListFlowable(
                    [ListItem(Paragraph(b, styles["p"]), leftIndent=12) for b in bullets],
                    bulletType="bullet",
                    start="-",
                    leftIndent=12,
                )
            )
            bullets.clear()

    for kind, payload in blocks:
        if kind != "bullet":
            flush()
        if kind in ("h1", "h2", "p"):
            out.append(Paragraph(payload, styles[kind]))
        elif kind == "bullet":
            bullets.append(payload)
        elif kind == "table":
            t = Table(payload, hAlign="LEFT")
            t.setStyle(
                TableStyle(
                    [
                        ("FONTNAME", (0, 0), (-1, -1), styles["p"].fontName),
                        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                        ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"),
                        ("FONTSIZE", (0, 0), (-1, -1), 9),
                        ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef2")),
                        ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
                    ]
                )
            )
            out.append(Spacer(1, 4))
            out.append(t)
            out.append(Spacer(1, 8))
        else:
            raise ValueError(kind)
    flush()
    return out


def _styles(body_font="Helvetica", head_font="Helvetica-Bold", leading=15):
    from reportlab.lib.styles import ParagraphStyle

    return {
        "h1": ParagraphStyle("h1", fontName=head_font, fontSize=17, leading=22, spaceAfter=8),
        "h2": ParagraphStyle(
            "h2", fontName=head_font, fontSize=13, leading=17, spaceBefore=10, spaceAfter=4
        ),
        "p": ParagraphStyle("p", fontName=body_font, fontSize=10.5, leading=leading, spaceAfter=6),
    }


def write_safety_pdf(path: Path) -> None:
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.units import inch
    from reportlab.platypus import PageBreak, SimpleDocTemplate

    styles = _styles()
    story = [*_pdf_flowables(SAFETY_P1, styles), PageBreak(), *_pdf_flowables(SAFETY_P2, styles)]

    def footer(canvas, doc):
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(
            inch, 0.6 * inch, f"Lumen Outfitters - Q2 2024 Safety Summary - page {doc.page}"
        )
        canvas.restoreState()

    doc = SimpleDocTemplate(
        str(path),
        pagesize=letter,
        invariant=1,
        title="Quarterly Safety Summary Q2 2024",
        author="Lumen Outfitters",
        lang="en",
        leftMargin=inch,
        rightMargin=inch,
        topMargin=inch,
        bottomMargin=inch,
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)


def write_notice_pdf(path: Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))  # ja gothic
    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiMin-W3"))  # ja mincho
    pdfmetrics.registerFont(UnicodeCIDFont("HYSMyeongJo-Medium"))  # ko
    pdfmetrics.registerFont(UnicodeCIDFont("HYGothic-Medium"))  # ko gothic

    ja = _styles("HeiseiMin-W3", "HeiseiKakuGo-W5", leading=18)
    ko = _styles("HYSMyeongJo-Medium", "HYGothic-Medium", leading=18)
    for s in (ja["p"], ko["p"]):
        s.wordWrap = "CJK"
    story = [Paragraph(NOTICE_TITLE, ja["h1"]), Spacer(1, 4)]
    story += _pdf_flowables(NOTICE_JA, ja)
    story.append(Spacer(1, 10))
    story += _pdf_flowables(NOTICE_KO, ko)
    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        invariant=1,
        title="重要なお知らせ / 중요 공지",
        author="Lumen Outfitters",
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=20 * mm,
        bottomMargin=20 * mm,
    )
    doc.build(story)


# ---------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------


def extract_text(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".docx":
        from docx import Document

        d = Document(str(path))
        parts = [p.text for p in d.paragraphs]
        for t in d.tables:
            for row in t.rows:
                parts.append(" | ".join(c.text for c in row.cells))
        return "\n".join(parts)
    if suffix == ".pdf":
        import pypdfium2 as pdfium

        pdf = pdfium.PdfDocument(str(path))
        try:
            return "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
        finally:
            pdf.close()
    return path.read_text(encoding="utf-8")


CHECKS = {
    "handbook.md": "refund the full purchase",
    "faq.txt": "Trailpoints is our free loyalty programme",
    "product-care.html": "tennis balls",
    "onboarding.docx": "Security badges are printed by the facilities desk",
    "benefits-ko.docx": "15일의 연차 휴가",
    "safety-report.pdf": "recordable injury rate",
    "expense-policy-ja.md": "宿泊費の上限",
    "remote-work-ko.txt": "핵심 근무 시간",
    "store-guide-ja.html": "レンタルサービス",
    "ko-ja-notice.pdf": "臨時休業",
}


def check() -> int:
    failures = 0
    for name, needle in CHECKS.items():
        path = OUT / name
        text = extract_text(path)
        flat = " ".join(text.split())
        ok = needle in flat
        if name == "ko-ja-notice.pdf":
            ok = ok and "임시 휴업합니다" in flat
        if name == "safety-report.pdf":
            import pypdfium2 as pdfium

            ok = ok and len(pdfium.PdfDocument(str(path))) == 2
        size = path.stat().st_size
        ok = ok and size < 200_000
        failures += not ok
        print(f"{'ok ' if ok else 'FAIL'} {name:24s} {size:7d} bytes  {len(flat):5d} chars")
    return failures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="verify text extraction after writing")
    args = ap.parse_args(argv)

    OUT.mkdir(exist_ok=True)
    for name, text in TEXT_FILES.items():
        (OUT / name).write_text(text, encoding="utf-8", newline="\n")
    write_docx(OUT / "onboarding.docx", ONBOARDING_DOCX, "Employee Onboarding Guide", "en")
    write_docx(OUT / "benefits-ko.docx", BENEFITS_KO_DOCX, "복리후생 안내", "ko")
    write_safety_pdf(OUT / "safety-report.pdf")
    write_notice_pdf(OUT / "ko-ja-notice.pdf")
    print(f"wrote {len(TEXT_FILES) + 4} files to {OUT}")
    return check() if args.check else 0


if __name__ == "__main__":
    sys.exit(main())
