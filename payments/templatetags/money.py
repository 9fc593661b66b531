"""``{% load money %}`` then ``{{ amount|money }}``: payledger_project.money in templates."""

from django import template

from payledger_project.money import money_format

register = template.Library()
register.filter("money", money_format)
