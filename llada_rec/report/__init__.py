"""Tables and plots from finished runs (`llada-rec report`): the paper's Table 3 / Table 4 and
Figures 3-6, and the verdicts on its orderings.

Modules, bottom to top: ``runs`` (find and read run directories), ``variants`` (what a run is:
dataset, model, variant, ablation family), ``cells`` (the seeds of one variant and their
spread), ``tables``, ``plots``, ``orderings`` (the paper's claims and their verdicts) and
``cli`` (:func:`~llada_rec.report.cli.write_report` and the command). Import a name from the
module that defines it; how runs are grouped into variants is in docs/DECISIONS.md.
"""
