"""From scores to figures: metrics (EER, minDCF, actDCF, Cllr, ROC/DET), calibration and fusion, plots and the
HTML report.
"""
