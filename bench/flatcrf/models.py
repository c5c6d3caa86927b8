"""One model, 25 fields, no audit, no checks beyond the field types: what a plain Django admin add saves."""

from django.db import models

NUMBERS = tuple(f"x{n:02d}" for n in range(22))


class FlatCrf(models.Model):
    subject = models.CharField(max_length=16)
    visit_code = models.CharField(max_length=16)
    report_date = models.DateField()
    locals().update(
        {name: models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True) for name in NUMBERS}
    )

    def __str__(self) -> str:
        return f"{self.subject} {self.visit_code}"
