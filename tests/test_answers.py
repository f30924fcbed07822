"""prefmill/answers.py on MATH-style answers: a hand-checked catalogue of verdicts, extraction from
solutions, and properties (an answer equals itself and its respellings; nothing raises)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from prefmill.answers import (
    answers_match,
    extract_answer,
    find_answer,
    judge,
    normalize_answer,
    reference_final_answer,
)
from prefmill.latex_answers import canonical_latex, last_boxed

# Answers an audit found unparsable even against themselves (Hendrycks MATH references).
AUDITED = [
    "\\frac43", "\\dfrac{17}{50}", "\\sqrt{51}", "-\\frac{\\pi}{6}", "\\pi", "\\cot x", "p - q", "\\text{Evelyn}",
    "\\text{(C)}", "(2,\\infty)", "(0,9) \\cup (9,36)", "x \\in [-2,7]", "\\{1\\pm\\sqrt{5},-2\\}",
    "\\frac{270}7\\text{ degrees}",
]

# (reference, candidate, verdict), each checked by hand: what a human grader of MATH-style answers would say.
CATALOGUE = [(a, a, True) for a in AUDITED] + [
    # fractions, every spelling
    ("\\frac{1}{2}", "0.5", True),
    ("\\frac{1}{2}", "1/2", True),
    ("\\dfrac{1}{2}", "\\frac12", True),
    ("\\tfrac{3}{4}", "0.75", True),
    ("\\frac43", "\\frac{4}{3}", True),
    ("\\frac43", "4/3", True),
    ("\\frac{4}{3}", "\\frac{3}{4}", False),
    ("\\frac{4}{3}", "1.33", False),
    ("-\\frac{1}{2}", "\\frac{-1}{2}", True),
    ("-\\frac{1}{2}", "\\frac{1}{2}", False),
    ("\\dfrac{17}{50}", "0.34", True),
    ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}", True),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}", True),
    ("\\frac{1}{3}", "0.333", False),
    ("\\frac{3}{4}", "\\dfrac34", True),
    ("\\frac{7}{2}", "3.5", True),
    ("\\frac{7}{2}", "3\\frac{1}{2}", True),
    ("\\frac{1}{3}", "\\frac{2}{6}", True),
    ("\\frac{1}{3}", "0.\\overline{3}", True),
    ("\\frac{5}{8}", "\\frac{8}{5}", False),
    ("\\frac{-3}{4}", "-0.75", True),
    ("\\frac{9}{4}", "2.25", True),
    ("\\frac{1}{6}", "0.17", False),
    ("\\frac{1}{6}", "0.1667", False),
    ("\\frac{x+1}{x-1}", "\\frac{1+x}{x-1}", True),
    ("\\frac{x+1}{x-1}", "\\frac{x-1}{x+1}", False),
    ("\\frac{1}{\\sqrt{3}}", "\\frac{\\sqrt{3}}{3}", True),
    ("\\frac{3\\sqrt{5}}{5}", "\\frac{3}{\\sqrt{5}}", True),
    ("2/3", "\\frac{2}{3}", True),
    ("\\frac{11}{12}", "\\frac{12}{11}", False),
    ("\\frac{1}{10}", "0.1", True),
    ("\\frac{5}{2}", "2.5", True),
    ("-\\frac{7}{3}", "\\frac{7}{3}", False),
    # roots
    ("\\sqrt{8}", "2\\sqrt{2}", True),
    ("\\sqrt{8}", "2\\sqrt2", True),
    ("3\\sqrt{2}", "\\sqrt{18}", True),
    ("\\sqrt{51}", "\\sqrt{15}", False),
    ("\\sqrt[3]{8}", "2", True),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True),
    ("2\\sqrt{3}", "\\sqrt{12}", True),
    ("4\\sqrt{2}", "2\\sqrt{8}", True),
    ("\\sqrt{2}", "1.414", False),
    ("\\sqrt[3]{2}", "2^{1/3}", True),
    ("\\sqrt{3}", "3^{1/2}", True),
    ("\\sqrt[3]{16}", "2\\sqrt[3]{2}", True),
    ("\\sqrt{5}+1", "1+\\sqrt5", True),
    ("\\frac{1+\\sqrt{5}}{2}", "\\frac{1-\\sqrt{5}}{2}", False),
    ("5\\sqrt{2}", "5\\sqrt{3}", False),
    ("\\sqrt{2}", "\\sqrt[3]{2}", False),
    ("2+\\sqrt{3}", "2\\sqrt{3}", False),
    ("\\sqrt{x}", "x^{1/2}", True),
    # pi and trigonometry
    ("-\\frac{\\pi}{6}", "-\\pi/6", True),
    ("\\frac{\\pi}{2}", "\\dfrac{\\pi}{2}", True),
    ("2\\pi", "\\pi \\cdot 2", True),
    ("\\pi", "3.14", False),
    ("\\cot x", "\\frac{\\cos x}{\\sin x}", True),
    ("\\sin x", "\\cos x", False),
    ("4\\pi", "4 \\pi", True),
    ("\\frac{9\\pi}{2}", "4.5\\pi", True),
    ("18\\pi", "18", False),
    ("36\\pi", "113.1", False),
    ("\\frac{2\\pi}{3}", "\\frac{2}{3}\\pi", True),
    ("\\pi - 2", "-2 + \\pi", True),
    ("\\pi", "\\pi^2", False),
    ("8-2\\pi", "2(4-\\pi)", True),
    ("16\\pi", "16\\pi \\text{ square units}", True),
    ("\\sin 2x", "2\\sin x\\cos x", True),
    ("\\tan x", "\\frac{\\sin x}{\\cos x}", True),
    ("\\sec x", "\\frac{1}{\\cos x}", True),
    ("\\cos x", "-\\cos x", False),
    ("-\\frac{\\sqrt{2}}{2}", "-\\frac{1}{\\sqrt{2}}", True),
    ("\\tan \\theta", "\\cot \\theta", False),
    # intervals and unions
    ("(2,\\infty)", "[2,\\infty)", False),
    ("(2,\\infty)", "\\left(2, \\infty\\right)", True),
    ("(0,9) \\cup (9,36)", "(0,9)\\cup(9,36)", True),
    ("(0,9) \\cup (9,36)", "(0,36)", False),
    ("x \\in [-2,7]", "[-2,7]", True),
    ("[-2,7]", "[-2,7)", False),
    ("(-\\infty, 0]", "(-\\infty,0]", True),
    ("[3,5]", "[3, 5]", True),
    ("[3,5]", "(3,5)", False),
    ("(-\\infty,-1) \\cup (1,\\infty)", "(-\\infty,-1)\\cup(1,\\infty)", True),
    ("(-\\infty,-1) \\cup (1,\\infty)", "(1,\\infty)\\cup(-\\infty,-1)", True),
    ("(-\\infty, 2]", "(-\\infty, 2)", False),
    ("(-\\infty,\\infty)", "\\mathbb{R}", True),
    ("(-3, 4]", "-3 < x \\le 4", True),
    ("[1,4]", "1 \\le x \\le 4", True),
    ("[-1, 1]", "[-1, 1] \\cup [2,3]", False),
    ("(-\\infty, 0) \\cup (0, \\infty)", "(-\\infty,\\infty)", False),
    ("x \\in (1,3)", "(1,3)", True),
    ("\\left[ -\\frac{1}{2}, 3 \\right)", "[-0.5, 3)", True),
    ("(-\\infty,-2]\\cup[2,\\infty)", "(-\\infty,-2)\\cup(2,\\infty)", False),
    ("[\\frac{1}{2}, \\infty)", "[0.5, \\infty)", True),
    ("(2,\\infty)", "x > 2", True),
    # sets and lists of solutions
    ("\\{1\\pm\\sqrt{5},-2\\}", "\\{-2, 1+\\sqrt{5}, 1-\\sqrt{5}\\}", True),
    ("\\{1,2,3\\}", "\\{3,2,1\\}", True),
    ("\\{1,2,3\\}", "\\{1,2\\}", False),
    ("-2, 3", "3, -2", True),
    ("-2, 3", "2, 3", False),
    ("\\{1,2\\}", "\\{2,1\\}", True),
    ("\\{-1, 3\\}", "\\{-1, 4\\}", False),
    ("\\{\\frac{1}{2}, -3\\}", "\\{-3, 0.5\\}", True),
    ("3, 5, 7", "3, 5", False),
    ("\\{2, 4, 6\\}", "\\{2, 4, 8\\}", False),
    ("1, -1", "\\pm 1", True),
    ("2 \\pm \\sqrt{3}", "2+\\sqrt{3}, 2-\\sqrt{3}", True),
    ("-5, 2", "2,-5", True),
    ("1, 2, 3", "1, 2, 4", False),
    # tuples and points
    ("(1,2)", "(1, 2)", True),
    ("(2,1)", "(1,2)", False),
    ("(1,2,3)", "(3,2,1)", False),
    ("(3, -\\frac{1}{2})", "(3, -0.5)", True),
    ("(3,4)", "(4,3)", False),
    ("(3,4)", "(3, 4)", True),
    ("(-1, \\frac{3}{2})", "(-1, 1.5)", True),
    ("(0, 0, 1)", "(0,0,1)", True),
    ("(1, 2, 3)", "(1, 2)", False),
    ("(2, -3)", "(2, 3)", False),
    ("\\left( \\frac{1}{2}, \\frac{\\sqrt{3}}{2} \\right)", "(\\frac12,\\frac{\\sqrt3}2)", True),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})", True),
    ("(3, \\frac{\\pi}{2})", "(3, \\frac{3\\pi}{2})", False),
    ("(1, -2)", "(1,-2)", True),
    # text answers and multiple-choice letters
    ("\\text{Evelyn}", "Evelyn", True),
    ("\\text{Evelyn}", "evelyn", True),
    ("\\text{Evelyn}", "\\text{Bob}", False),
    ("\\text{(C)}", "C", True),
    ("\\text{(C)}", "(C)", True),
    ("\\textbf{(C)}", "C", True),
    ("(C)", "(D)", False),
    ("\\text{no}", "\\text{yes}", False),
    ("\\text{Monday}", "\\text{ monday }", True),
    ("\\text{even}", "\\text{Even}", True),
    ("\\text{odd}", "\\text{even}", False),
    ("\\text{neither}", "neither", True),
    ("\\text{Tuesday}", "\\text{Thursday}", False),
    ("\\text{(E)}", "E", True),
    ("\\text{(B)}", "\\text{(D)}", False),
    ("\\text{B}", "(B)", True),
    ("\\textbf{(A)}", "\\text{(A)}", True),
    ("(A)", "\\mathrm{(A)}", True),
    ("\\text{C}", "\\textbf{(C) }", True),
    ("\\text{Yes}", "yes", True),
    ("\\text{Ellipse}", "\\text{Parabola}", False),
    ("\\text{Sunday}", "Sunday.", True),
    ("\\text{A}", "\\text{a}", True),
    ("\\text{(A)}", "\\text{(A), (C)}", False),
    ("\\text{(A)}", "\\textbf{(A) }5", True),
    ("\\text{(A)}", "\\textbf{(B) }5", False),
    ("\\text{(D)}", "(D) 12", True),
    # degrees, units, currency, percent
    ("30^\\circ", "30", True),
    ("30^{\\circ}", "30", True),
    ("30^\\circ", "60^\\circ", False),
    ("5\\text{ cm}", "5", True),
    ("5\\text{ cm}^2", "5", True),
    ("12\\text{ inches}", "13", False),
    ("\\$18", "18", True),
    ("10\\%", "10", True),
    ("45^\\circ", "45^{\\circ}", True),
    ("120^\\circ", "120°", True),
    ("120^\\circ", "120\\text{ degrees}", True),
    ("72^\\circ", "108^\\circ", False),
    ("90", "90^\\circ", True),
    ("135", "135\\degree", True),
    ("22.5^\\circ", "22.5", True),
    ("25\\%", "25", True),
    ("25\\%", "25 \\%", True),
    ("12.5\\%", "12.5", True),
    ("40\\%", "60\\%", False),
    ("5\\%", "5 percent", True),
    ("20\\text{ cm}^2", "20", True),
    ("15\\text{ meters}", "15 \\text{ m}", True),
    ("6\\text{ units}", "6", True),
    ("3\\text{ hours}", "3\\text{ hrs}", True),
    ("4\\text{ square units}", "4", True),
    ("\\$5.40", "5.40", True),
    ("\\$5.40", "\\$5.4", True),
    ("\\$5.40", "\\$5.04", False),
    # negative numbers
    ("-2", "2", False),
    ("-3", "-3.0", True),
    ("-\\sqrt{2}", "\\sqrt{2}", False),
    # expressions and equations
    ("x^2", "x^3", False),
    ("x^2+2x+1", "(x+1)^2", True),
    ("p - q", "-q + p", True),
    ("p - q", "q - p", False),
    ("2x+1", "1+2x", True),
    ("y = 2x + 3", "2x+3", True),
    ("x = 5", "5", True),
    ("6 - 2i", "6-2i", True),
    ("\\frac{\\pi}{2}", "pi/2", True),
    ("x^2-4", "(x-2)(x+2)", True),
    ("(x-2)(x+2)", "(x-2)^2", False),
    ("3x^2 - 5x + 2", "(3x-2)(x-1)", True),
    ("2x^3+x", "x(2x^2+1)", True),
    ("a^2b", "ba^2", True),
    ("\\frac{x}{2}", "0.5x", True),
    ("x+y", "x-y", False),
    ("-x^2+4x", "4x-x^2", True),
    ("n^2+n", "n(n+1)", True),
    ("2^{10}", "1024", True),
    ("3^5", "243", True),
    ("\\binom{5}{2}", "10", True),
    ("5!", "120", True),
    ("4x^2 - 12x + 9", "(2x - 3)^2", True),
    ("y = -2x + 5", "y = 2x + 5", False),
    ("y = \\frac{1}{2}x + 1", "y=\\frac12 x+1", True),
    ("x^2+7x+10", "x^2+7x+12", False),
    ("2^{100}", "2^{99}", False),
    ("10^{-3}", "0.001", True),
    ("3 \\times 10^4", "30000", True),
    ("3 \\times 10^4", "3 \\cdot 10^{4}", True),
    ("e^2", "e^{2}", True),
    ("\\infty", "-\\infty", False),
    ("\\log_2 3", "\\frac{\\ln 3}{\\ln 2}", True),
    # complex numbers
    ("3+4i", "4i+3", True),
    ("1-i", "1+i", False),
    ("2i", "2 i", True),
    ("\\frac{1}{2} + \\frac{\\sqrt{3}}{2}i", "\\frac{1+i\\sqrt{3}}{2}", True),
    # an equation stating the value: x = 3 against 3
    ("3", "x = 3", True),
    ("x = 3", "x = -3", False),
    ("-4", "a=-4", True),
    ("\\frac{5}{2}", "k = \\frac{5}{2}", True),
    ("7", "n=7", True),
    ("x=5", "5.0", True),
    # matrices
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", True),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}", False),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", True),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}", False),
    ("\\begin{pmatrix} \\frac{1}{2} \\\\ -1 \\end{pmatrix}", "\\begin{pmatrix} 0.5 \\\\ -1 \\end{pmatrix}", True),
    ("\\begin{pmatrix} 2 \\\\ -1 \\\\ 3 \\end{pmatrix}", "\\begin{bmatrix} 2 \\\\ -1 \\\\ 3 \\end{bmatrix}", True),
    ("\\begin{pmatrix} 0 & 1 \\\\ 1 & 0 \\end{pmatrix}", "\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}", False),
    ("\\begin{pmatrix} 2 \\\\ -1 \\end{pmatrix}", "\\begin{pmatrix} 2 \\\\ -1 \\\\ 0 \\end{pmatrix}", False),
    # GSM8K-style numbers stay as they were
    ("1,234", "1234", True),
    ("18", "18.0", True),
    ("1000", "\\$1{,}000", True),
    ("0.5", ".5", True),
    ("18", "19", False),
    # thousands separators
    ("10,\\!000", "10000", True),
    ("10,\\!000", "10,000", True),
    ("10{,}000", "1000", False),
    ("1,000,000", "10^6", True),
    ("2,\\!500", "2.5", False),
    ("12,345", "12345", True),
    ("12,345", "12,354", False),
    ("1,000,000", "1000000", True),
    # near misses between numbers
    ("0.05", "0.5", False),
    ("100", "1000", False),
    ("1.5", "1.50", True),
    ("6", "6.01", False),
    ("-0.25", "-\\frac14", True),
    ("0", "-0", True),
    ("1", "0.999", False),
]

# (reference, solution, verdict): whole solutions written as a model writes them, judged as the verify
# stage judges them (find_answer, then answers_match); each checked by hand.
_RETRIED = (
    "Trying $n = 4$ gives $\\boxed{4}$, but $4^2 + 4 = 20$, not $30$. "
    "Checking again, $5^2 + 5 = 30$, so the answer is $\\boxed{5}$."
)
SOLUTIONS = [
    # a boxed answer, with or without $...$; the last box wins; nested braces
    ("\\frac{3}{4}", "Of 8 outcomes 6 are favourable, so the answer is $\\frac{6}{8} = \\boxed{\\frac{3}{4}}$.", True),
    ("\\frac{3}{4}", "Of the 8 outcomes 3 are favourable, so the probability is $\\boxed{\\dfrac{3}{8}}$.", False),
    ("5", _RETRIED, True),
    ("4", _RETRIED, False),
    ("\\frac{\\sqrt{3}}{2}", "Using the unit circle, $\\sin 60^\\circ = \\boxed{\\frac{\\sqrt{3}}{2}}$.", True),
    ("\\frac{\\sqrt{3}}{2}", "Using the unit circle, $\\sin 60^\\circ = \\boxed{\\frac{\\sqrt{2}}{2}}$.", False),
    ("\\frac{1}{2}", "Both events are independent, so the answer is \\boxed{\\frac12}.", True),
    ("\\sqrt{5}", "By the distance formula the distance is \\(\\boxed{\\sqrt{5}}\\).", True),
    ("7", "Thus the remainder is \\boxed {7}.", True),
    ("10,\\!000", "Each of the four digits has ten choices, so there are $\\boxed{10{,}000}$ codes.", True),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "Projected: $\\boxed{\\begin{pmatrix}1\\\\2\\end{pmatrix}}$.", True),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "Projected: $\\boxed{\\begin{pmatrix}2\\\\4\\end{pmatrix}}$.", False),
    ("x^2 + 2x + 1", "Expanding, we get $(x+1)^2 = \\boxed{x^2 + 2x + 1}$.", True),
    ("x^2 + 2x + 1", "Expanding, we get $(x+1)^2 = \\boxed{x^2 + 1}$.", False),
    # a boxed answer is read whole, never reduced to its last number
    ("2", "The inequality $x^2 \\le 4$ holds exactly on $\\boxed{[-2, 2]}$.", False),
    ("3", "The lines meet at the point $\\boxed{(1,3)}$.", False),
    ("\\sqrt{2}", "The diagonal has length $\\boxed{3\\sqrt{2}}$.", False),
    ("2", "Taking square roots, $x = \\boxed{\\sqrt{2}}$.", False),
    ("120", "The five books can be arranged in $\\boxed{5!}$ ways.", True),
    ("120", "The five books can be arranged in $\\boxed{4!}$ ways.", False),
    ("\\frac{1}{3}", "Dividing, $1 \\div 3 = \\boxed{0.\\overline{3}}$.", True),
    ("3+4i", "Multiplying out, $(2+i)^2 = 4 + 4i + i^2 = \\boxed{3 + 4 i}$.", True),
    ("3+4i", "Multiplying out, $(2+i)^2 = 4 + 4i + i^2 = \\boxed{5 + 4i}$.", False),
    # \fbox
    ("12", "Adding the four terms, the sum is $\\fbox{12}$.", True),
    ("12", "Adding the four terms, the sum is \\fbox{$13$}.", False),
    # "The answer is ..." and "Final Answer: ..."
    ("(2,\\infty)", "Dividing by 3 gives $x > 2$. The answer is $(2, \\infty)$.", True),
    ("(2,\\infty)", "Dividing by 3 gives $x \\ge 2$. The answer is $[2, \\infty)$.", False),
    ("\\text{(B)}", "Only choice B satisfies both conditions. The answer is (B).", True),
    ("\\text{(B)}", "Only choice D satisfies both conditions. The answer is (D).", False),
    ("\\frac{\\pi}{4}", "The angle is $\\arccos \\frac{\\sqrt{2}}{2}$. The answer is $\\frac{\\pi}{4}$.", True),
    ("\\frac{\\pi}{4}", "The angle is $\\arccos 0$. The answer is $\\frac{\\pi}{2}$.", False),
    ("5", "Final Answer: The final answer is $5$. I hope it is correct.", True),
    ("\\frac{1}{2}", "Final Answer: The final answer is $\\frac{1}{3}$. I hope it is correct.", False),
    ("7", "The answer is: 7", True),
    ("\\frac{7}{2}", "So the slope is 7/2. The answer is 7/2.", True),
    ("\\frac{7}{2}", "So the slope is 2/7. The answer is 2/7.", False),
    # GSM8K's ####
    ("18", "She sells 16 - 3 - 4 = 9 eggs and makes 9 * 2 = $18.\n#### 18", True),
    ("18", "She sells 16 - 3 - 4 = 9 eggs and makes 9 * 3 = $27.\n#### 27", False),
    ("1,234", "The total is 1,000 + 234 = 1,234.\n#### 1,234", True),
    # sets are order-free, points are ordered; intervals, inequalities and unions
    ("\\{1,2\\}", "The roots of $x^2 - 3x + 2$ form the set $\\boxed{\\{2, 1\\}}$.", True),
    ("(1,2)", "Substituting back, the solution is $(x, y) = \\boxed{(2, 1)}$.", False),
    ("(1,2)", "Substituting back, the solution is $(x, y) = \\boxed{(1, 2)}$.", True),
    ("(2,\\infty)", "Dividing by 3, the solutions are all $x$ with $\\boxed{x > 2}$.", True),
    ("(-\\infty,1)\\cup(3,\\infty)", "Outside its roots: $\\boxed{(-\\infty, 1) \\cup (3, \\infty)}$.", True),
    ("(-\\infty,1)\\cup(3,\\infty)", "Between its roots: $\\boxed{(1, 3)}$.", False),
    # x = 3 against 3; text, multiple-choice letters, units, degrees, percent, currency
    ("3", "Solving $2x + 1 = 7$ gives $\\boxed{x = 3}$.", True),
    ("3", "Solving $2x - 1 = 7$ gives $\\boxed{x = 4}$.", False),
    ("\\text{(C)}", "Only the third option works, so the answer is $\\boxed{C}$.", True),
    ("\\text{(C)}", "Only the third option works, so the answer is $\\boxed{\\textbf{(C)}}$.", True),
    ("\\text{Evelyn}", "Evelyn has the greatest average speed, so the answer is $\\boxed{\\text{Evelyn}}$.", True),
    ("\\text{Evelyn}", "Carla has the greatest average speed: $\\boxed{\\text{Carla}}$.", False),
    ("20", "The area is $4 \\cdot 5 = \\boxed{20\\text{ square units}}$.", True),
    ("30^\\circ", "Since the triangle is isosceles, $\\angle ABC = \\boxed{30^\\circ}$.", True),
    ("30^\\circ", "Since the triangle is isosceles, $\\angle ABC = \\boxed{75^\\circ}$.", False),
    ("25\\%", "The price fell by $5$ of $20$ dollars, that is by $\\boxed{25\\%}$.", True),
    ("1,000", "The total cost is $\\boxed{\\$1,\\!000}$.", True),
    ("\\$18.90", "Her total bill comes to $\\$18.90$.", True),
    ("-3", "Therefore $x = \\boxed{-3}$.", True),
    ("3", "Therefore $x = \\boxed{-3}$.", False),
    ("\\text{(A)}", "Only 5 works, so the answer is $\\boxed{\\textbf{(A)}\\ 5}$.", True),
    ("\\text{(B)}", "Only 5 works, hence $\\boxed{\\text{(A) } 5}$.", False),
    # a reference that is itself a MATH solution
    ("We have $\\frac{2}{4} = \\boxed{\\frac{1}{2}}$.", "Simplifying, we get $\\boxed{0.5}$.", True),
    ("We have $\\frac{2}{4} = \\boxed{\\frac{1}{2}}$.", "Simplifying, we get $\\boxed{0.25}$.", False),
    # no explicit answer: the number closing the text
    ("42", "Adding the two groups together, we get a total of 42.", True),
    ("42", "Adding the two groups together, we get a total of 24.", False),
    ("12", "Therefore the rectangle has a perimeter of 12 cm.", True),
]


def boxed_solution(answer: str) -> str:
    """A model's solution ending in the answer, boxed: how a CATALOGUE candidate reaches judge()."""
    return f"We simplify and find the answer.\nThus the answer is $\\boxed{{{answer}}}$."


def boxed_reference(answer: str) -> str:
    """A MATH reference solution ending in the answer, boxed."""
    return f"So \\boxed{{{answer}}}."


def agreement(match=answers_match, catalogue=CATALOGUE) -> float:
    """Share of catalogue verdicts reproduced (None counts as a miss); also run on the old code."""
    return sum(match(r, c) is v for r, c, v in catalogue) / len(catalogue)


class TestCatalogue:
    def test_size(self):
        assert len(CATALOGUE) >= 160
        assert len(SOLUTIONS) >= 60

    @pytest.mark.parametrize(("reference", "candidate", "verdict"), CATALOGUE)
    def test_verdict(self, reference, candidate, verdict):
        assert answers_match(reference, candidate) is verdict

    @pytest.mark.parametrize(("reference", "candidate", "verdict"), CATALOGUE)
    def test_verdict_through_boxed_solutions(self, reference, candidate, verdict):
        """The same verdict when both sides are MATH solutions ending in \\boxed{...}."""
        extracted, correct, error = judge(boxed_solution(candidate), reference_final_answer(boxed_reference(reference)))
        assert (correct, error) == (verdict, None), extracted

    @pytest.mark.parametrize(("reference", "solution", "verdict"), SOLUTIONS)
    def test_solution_verdict(self, reference, solution, verdict):
        """Whole solutions, judged as the verify stage judges them; every one states an answer."""
        extracted, correct, error = judge(solution, reference_final_answer(reference))
        assert (correct, error) == (verdict, None), extracted

    @pytest.mark.parametrize("answer", AUDITED)
    def test_audited_answers_are_read(self, answer):
        """Not just equal as strings: math-verify or the text rule reads a respelling of each."""
        assert answers_match(answer, f"$\\displaystyle {answer}$.") is True

    def test_a_solution_without_an_answer_states_none(self):
        assert judge("We set up the equation but cannot solve it.", "7") == (None, False, "no_answer_found")

    def test_prose_is_still_unreadable(self):
        assert answers_match("42", "forty-two") is None
        assert answers_match("forty-two", "forty-two") is True


class TestExtraction:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("So the interval is $\\boxed{[-2, 2]}$.", "[-2, 2]"),
            ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
            ("Hence \\boxed{\\dfrac{\\sqrt{3}}{2}}.", "\\frac{\\sqrt{3}}{2}"),
            ("$\\boxed{(0,9) \\cup (9,36)}$", "(0,9) \\cup (9,36)"),
            ("\\boxed{\\{1\\pm\\sqrt{5},-2\\}}", "\\{1\\pm\\sqrt{5},-2\\}"),
            ("\\boxed{\\left( 2, \\infty \\right)}", "(2, \\infty)"),
            ("\\boxed{\\text{(C)}}", "\\text{(C)}"),
            ("\\boxed{x \\in [-2,7]}", "[-2,7]"),
            ("The angle is $\\boxed{30^\\circ}$.", "30"),
            ("\\boxed{\\frac{270}7\\text{ degrees}}", "\\frac{270}{7}"),
            ("first \\boxed{\\frac{1}{2}}, then \\boxed{(1, 2)}", "(1, 2)"),
            ("first \\boxed{1} then \\fbox{2}", "2"),
            ("so $\\boxed 5$", "5"),
            ("The answer is $\\frac{3}{4}$.", "\\frac{3}{4}"),
            ("The answer is \\(\\frac34\\).", "\\frac{3}{4}"),
            ("The answer is $(2,\\infty)$.", "(2,\\infty)"),
            ("The answer is [-2, 2].", "[-2, 2]"),
            ("The answer is (C).", "(C)"),
            ("The answer is 2x+1.", "2x+1"),
            ("The five books can be arranged in $\\boxed{5!}$ ways.", "5!"),
            ("So $\\boxed{0.\\overline{3}}$.", "\\frac{1}{3}"),
            ("So $\\boxed{x > 2}$.", "x > 2"),
            ("So the answer is $\\boxed{\\textbf{(A)}\\ 5}$.", "\\text{(A)} 5"),
        ],
    )
    def test_latex_answers(self, text, expected):
        assert extract_answer(text) == expected

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("9 * 2 = 18\n#### 18", ("18", "hashes")),
            ("#### $1,234", ("1234", "hashes")),
            ("#### 12 dollars", ("12", "hashes")),
            ("#### 5 + 13 = 18", ("18", "hashes")),
            ("#### 18 (eggs)", ("18", "hashes")),
            ("The answer is 18 (9 eggs at $2 each).", ("18", "answer_is")),
            ("The answer is 3 + 4 = 7.", ("7", "answer_is")),
            ("#### 18!", ("18", "hashes")),
            ("The answer is 18!", ("18", "answer_is")),
            ("So she makes 18!", ("18", "trailing_number")),
        ],
    )
    def test_gsm8k_answers_unchanged(self, text, expected):
        assert find_answer(text) == expected

    def test_boxed_braces_balance_past_escaped_braces(self):
        assert last_boxed("\\boxed{\\{1,2\\}} and more") == "\\{1,2\\}"
        assert last_boxed("\\boxed{\\left\\{ x \\mid x > 0 \\right.} so") == "\\left\\{ x \\mid x > 0 \\right."
        assert last_boxed("\\boxed{\\frac{1}{2}") is None

    def test_boxed_interval_is_not_read_as_its_last_number(self):
        assert judge("So $\\boxed{[-2, 2]}$.", "[-2,2]") == ("[-2, 2]", True, None)
        assert judge("So $\\boxed{[-2, 2]}$.", "2")[1] is False


class TestCanonicalLatex:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("\\frac43", "\\frac{4}{3}"),
            ("\\frac{270}7", "\\frac{270}{7}"),
            ("\\frac\\pi2", "\\frac{\\pi}{2}"),
            ("\\frac{\\sqrt3}2", "\\frac{\\sqrt{3}}{2}"),
            ("\\sqrt[3]2", "\\sqrt[3]{2}"),
            ("\\dfrac{1}{2}", "\\frac{1}{2}"),
            ("\\left[ 1, 2 \\right)", "[1, 2)"),
            ("1\\!000", "1 000"),
            ("45^{\\circ}", "45"),
            ("5\\text{ cm}^2", "5"),
            ("\\text{Evelyn}", "\\text{Evelyn}"),
            ("\\mbox{(B)}", "\\text{(B)}"),
            ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
            ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
            ("0.\\overline{3}", "\\frac{1}{3}"),
            ("0.1\\overline{6}", "\\frac{1}{6}"),
            ("-2.\\overline{142857}", "-\\frac{15}{7}"),
            ("0.\\overline{9}", "1"),
            ("\\overline{AB}", "\\overline{AB}"),
        ],
    )
    def test_cases(self, raw, expected):
        assert canonical_latex(raw) == expected


_small = st.integers(min_value=-50, max_value=50)
_positive = st.integers(min_value=1, max_value=50)
_digit = st.integers(min_value=1, max_value=9)
_unit = st.sampled_from(["\\text{ cm}", "\\text{ degrees}", "\\text{ units}", "^\\circ", "\\text{ cm}^2"])


def _fraction(p: int, q: int, style: str) -> str:
    return {"frac": f"\\frac{{{p}}}{{{q}}}", "dfrac": f"\\dfrac{{{p}}}{{{q}}}", "slash": f"{p}/{q}"}[style]


def _spellings(draw_pair):
    """A strategy of (spelling, other spelling) of one value: what a reference and a solution write."""
    return st.composite(lambda draw: draw_pair(draw))()


_value_pair = st.one_of(
    _small.map(lambda n: (str(n), f"{n}.0")),
    st.decimals(min_value=-100, max_value=100, places=2, allow_nan=False).map(lambda d: (str(d), f"{d}0")),
    st.builds(lambda p, q, a, b: (_fraction(p, q, a), _fraction(2 * p, 2 * q, b)), _small, _positive,
              st.sampled_from(["frac", "dfrac", "slash"]), st.sampled_from(["frac", "dfrac", "slash"])),
    st.builds(lambda p, q: (f"\\frac{p}{q}", f"\\frac{{{p}}}{{{q}}}"), _digit, _digit),
    st.builds(lambda k, n: (f"{k}\\sqrt{{{n}}}", f"\\sqrt{{{k * k * n}}}"), _positive, _digit),
    st.builds(lambda n: (f"\\sqrt{n}", f"\\sqrt{{{n}}}"), _digit),
    st.builds(lambda k: (f"\\frac{{\\pi}}{{{k}}}", f"\\pi/{k}"), _positive),
)


def _interval(draw) -> tuple[str, str]:
    a, b = sorted(draw(st.lists(_small, min_size=2, max_size=2, unique=True)))
    lo, hi = draw(st.sampled_from("([")), draw(st.sampled_from(")]"))
    left, right = (("(", "-\\infty") if draw(st.booleans()) else (lo, str(a))), (hi, str(b))
    if draw(st.booleans()):
        right = (")", "\\infty")
    one = f"{left[0]}{left[1]},{right[1]}{right[0]}"
    return one, f"\\left{left[0]} {left[1]}, {right[1]} \\right{right[0]}"


def _collection(draw) -> tuple[str, str]:
    pairs = draw(st.lists(_value_pair, min_size=2, max_size=3))
    if draw(st.booleans()):  # a set: any order
        return "\\{" + ", ".join(p[0] for p in pairs) + "\\}", "\\{" + ",".join(p[1] for p in reversed(pairs)) + "\\}"
    return "(" + ", ".join(p[0] for p in pairs) + ")", "\\left(" + ",".join(p[1] for p in pairs) + "\\right)"


def _union(draw) -> tuple[str, str]:
    (a, a2), (b, b2) = draw(_spellings(_interval)), draw(_spellings(_interval))
    return f"{a} \\cup {b}", f"{a2}\\cup {b2}"


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=10)
_answer_pair = st.one_of(
    _value_pair,
    st.builds(lambda k, u: (f"{k}{u}", str(k)), _positive, _unit),
    _value_pair.filter(lambda p: "-" not in p[0] + p[1]).map(lambda p: (f"-{p[0]}", f"-{p[1]}")),
    _spellings(_interval),
    _spellings(_union),
    _spellings(_collection),
    _word.map(lambda w: (f"\\text{{{w.capitalize()}}}", w)),
    st.sampled_from("ABCDE").map(lambda c: (f"\\text{{({c})}}", c.lower())),
)
_answer = _answer_pair.map(lambda p: p[0])
_latexish = st.text(alphabet=st.sampled_from(list("\\{}[]()$^_,.-+/=0123456789 xpifracsqrtboxedleft#")), max_size=40)
_any_text = st.one_of(st.text(max_size=60), _latexish)


class TestProperties:
    @settings(max_examples=300, deadline=None)
    @given(a=_answer)
    def test_an_answer_equals_itself(self, a):
        assert answers_match(a, a) is True
        assert judge(f"Work.\nSo the answer is $\\boxed{{{a}}}$.", a)[1:] == (True, None)

    @settings(max_examples=150, deadline=None)
    @given(pair=_answer_pair)
    def test_an_answer_equals_its_other_spelling(self, pair):
        """Different strings, so this is math-verify (or the text rule) reading both, not string equality."""
        reference, spelling = pair
        assert answers_match(reference, spelling) is True
        assert judge(f"Work.\nSo the answer is $\\boxed{{{spelling}}}$.", reference_final_answer(reference))[1:] == (
            True, None)

    @settings(max_examples=100, deadline=None)
    @given(p=_small, q=_positive, style=st.sampled_from(["frac", "dfrac", "slash"]))
    def test_a_fraction_equals_its_value_and_not_its_neighbour(self, p, q, style):
        value = Fraction(p, q)
        decimal = f"{float(value):.10f}" if value.denominator in (1, 2, 4, 5, 8, 10, 20, 25, 50) else None
        assert answers_match(_fraction(p, q, style), f"\\frac{{{value.numerator}}}{{{value.denominator}}}")
        if decimal is not None:
            assert answers_match(_fraction(p, q, style), decimal) is True
        assert answers_match(_fraction(p, q, style), _fraction(p + 1, q, "frac")) is False

    @settings(max_examples=50, deadline=None)
    @given(k=st.integers(min_value=2, max_value=12), n=st.sampled_from([2, 3, 5, 6, 7]))
    def test_a_root_equals_its_other_forms(self, k, n):
        assert answers_match(f"{k}\\sqrt{{{n}}}", f"\\sqrt{{{k * k * n}}}") is True
        assert answers_match(f"{k}\\sqrt{{{n}}}", f"\\sqrt{{{k * n}}}") is False

    @settings(max_examples=25, deadline=None)
    @given(a=_small, width=_positive)
    def test_open_and_closed_intervals_differ(self, a, width):
        b = a + width
        assert answers_match(f"({a},{b})", f"\\left( {a}, {b} \\right)") is True
        assert answers_match(f"({a},{b})", f"[{a},{b})") is False

    @settings(max_examples=300, deadline=None)
    @given(text=_any_text)
    def test_extraction_never_raises(self, text):
        answer, how = find_answer(text)
        assert answer is None or (isinstance(answer, str) and answer and how is not None)
        assert extract_answer(text) == answer

    @settings(max_examples=300, deadline=None)
    @given(text=_any_text)
    @example(text="\\\t0")  # a TeX "\\ " spelt with a tab
    def test_normalising_twice_changes_nothing(self, text):
        once = normalize_answer(text)
        assert once is None or normalize_answer(once) == once

    @settings(max_examples=200, deadline=None)
    @given(a=_any_text, b=_any_text)
    def test_answers_match_never_raises(self, a, b):
        assert answers_match(a, b) in (True, False, None)
        assert answers_match(a, a) is (None if normalize_answer(a) is None else True)
