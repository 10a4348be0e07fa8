"""Small real documents for the API tests, one topic each, so a search can tell them apart."""

import io

from knowledge.tests.samples import build_pdf


def warranty_pdf() -> bytes:
    return build_pdf(
        [
            [
                (18, "Warranty"),
                (12, "Every Acme widget carries a two-year warranty covering manufacturing defects."),
                (12, "Keep your proof of purchase to make a warranty claim."),
            ],
            [
                (18, "Battery care"),
                (12, "Charge the battery fully before first use and store it at room temperature."),
            ],
        ],
        bookmarks=[("Warranty", 0), ("Battery care", 1)],
    )


def shipping_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Shipping policy", 0)
    document.add_heading("Delivery costs", 1)
    document.add_paragraph("Orders over 50 dollars ship free of charge; smaller orders pay a flat 5 dollar fee.")
    document.add_heading("Delivery times", 1)
    document.add_paragraph("Parcels leave our warehouse within two business days.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


STORES_HTML = b"""<!DOCTYPE html>
<html><head><title>Our stores</title><script>var x = "tracking";</script></head>
<body>
<nav><a href="/">Home</a> <a href="/login">Log in</a></nav>
<main>
<h1>Store locations</h1>
<p>Our flagship store is at 12 Harbour Street in Portsmouth, next to the ferry terminal.</p>
<h2>Parking</h2>
<p>Free customer parking is available behind the building.</p>
</main>
<footer>Copyright Acme Widgets. All rights reserved.</footer>
</body></html>
"""

PRICES_CSV = b"""product,price,colour
Widget Mini,19.00 dollars,red
Widget Pro,49.00 dollars,blue
Widget Max,99.00 dollars,black
"""

FAQ_MARKDOWN = b"""# Frequently asked questions

## Gift cards

Gift cards never expire and can be used online or in store.

## Loyalty programme

Members earn one point for every dollar spent.
"""
