% castlecsf_chrom_reference.m -- reference values of castleCSF's chromatic part for psychofeat's tests.
%
% Evaluates the upstream MATLAB castleCSF (Ashraf, Mantiuk, Chapiro & Wuerger 2024, JoV 24(4):5;
% gfxdisp/castleCSF v0.2.4, shipped read-only in <data root>/hvs/castleCSF_matlab) for static (0 Hz),
% foveal (eccentricity 0) stimuli and writes a long-format CSV with the columns
%   quantity     -- 'rg' / 'yv': the red-green / yellow-violet mechanism alone,
%                   CSF_castleCSF().castleCSF_rg.sensitivity(pars) (resp. castleCSF_yv), given luminance;
%                   'full': the whole model CSF_castleCSF().sensitivity(pars) for a modulation along
%                   lms_delta on a D65 background of that luminance (lms_bkg = [0.6991 0.3009 0.0198]*L, the
%                   model's own D65 default), i.e. 1 / RMS cone contrast at threshold;
%   s_frequency [cpd], luminance [cd/m^2], area [deg^2], L_delta, M_delta, S_delta (NaN for rg/yv), S.
% psychofeat.csf.castle must reproduce every S to 1e-6 relative (tests/test_csf.py).
%
% Run (GNU Octave >= 7; `apt-get install -y octave` on Debian) from the repository root:
%   octave --no-gui --quiet scripts/castlecsf_chrom_reference.m <castleCSF_matlab dir> <out.csv>
% e.g. with the shared data: <castleCSF_matlab dir> = $PSYCHOFEAT_DATA_ROOT/hvs/castleCSF_matlab and
% <out.csv> = tests/data/castlecsf_chrom_reference.csv.
%
% As in scripts/castlecsf_reference.m: Octave cannot parse the `methods( Abstract )` block of CSF_base.m
% (signatures without `function`), so the four class files the model needs are copied to a temporary folder
% and that one declaration block is removed from the copy (it declares abstract signatures only; no
% computation changes). The shared files themselves are never modified.

1;  % a script file, not a function file

args = argv();
if numel(args) ~= 2
  error('usage: octave --no-gui --quiet castlecsf_chrom_reference.m <castleCSF_matlab dir> <out.csv>');
end
src_dir = args{1};
out_csv = args{2};

tmp_dir = tempname();
mkdir(tmp_dir);
files = {'CSF_base.m', 'CSF_castleCSF.m', 'CSF_stelaCSF_lum_peak.m', 'CSF_castleCSF_chrom.m'};
for i = 1:numel(files)
  txt = fileread(fullfile(src_dir, files{i}));
  if strcmp(files{i}, 'CSF_base.m')
    n_before = numel(txt);
    txt = regexprep(txt, 'methods\(\s*Abstract\s*\).*?\n    end\n', '', 'once');
    if numel(txt) == n_before
      error('could not find the methods( Abstract ) block in CSF_base.m: has the upstream file changed?');
    end
  end
  fid = fopen(fullfile(tmp_dir, files{i}), 'w');
  fwrite(fid, txt);
  fclose(fid);
end
addpath(tmp_dir);

% The grid: from below the chromatic peak frequencies (f_max = 0.018 cpd for rg, 0.0043 cpd for yv, where the
% log-parabola is held at 1) to 32 cpd; 0.1-1000 cd/m^2; Gabor areas from 0.05 to 100 deg^2 (13.9 deg^2 is
% psychofeat's default stimulus, (224/60)^2).
freqs = [0.002 0.01 0.0625 0.125 0.25 0.5 1 2 4 8 16 27 32];
lums = [0.1 1 10 100 1000];
areas = [0.05 1 (224/60)^2 100];
[F, L, A] = ndgrid(freqs, lums, areas);
pars = struct('s_frequency', F(:), 'luminance', L(:), 'area', A(:));

model = CSF_castleCSF();
S_rg = model.castleCSF_rg.sensitivity(pars);
S_yv = model.castleCSF_yv.sensitivity(pars);

% Full model along colour directions (LMS deltas): castleCSF's isolating directions of its RG and YV
% mechanisms, an L-M modulation with some S, and color_directions.csv ids 10 (hdr_csf C2, red-green) and
% 11 (hdr_csf C3, yellow-violet) and 41 (D65 luminance).
dirs = [1 -1 0; 0 0 1; 0.7 -0.7 0.1; ...
        0.762860488743917 -0.646494144848118 -0.00944433112997181; ...
        0.450449715432405 0.274890824273731 0.84942927227461; ...
        0.918203011274591 0.395254682570263 0.0260185701481506];
n = numel(F);
fid = fopen(out_csv, 'w');
fprintf(fid, 'quantity,s_frequency,luminance,area,L_delta,M_delta,S_delta,S\n');
for i = 1:n
  fprintf(fid, 'rg,%.17g,%.17g,%.17g,NaN,NaN,NaN,%.17g\n', F(i), L(i), A(i), S_rg(i));
end
for i = 1:n
  fprintf(fid, 'yv,%.17g,%.17g,%.17g,NaN,NaN,NaN,%.17g\n', F(i), L(i), A(i), S_yv(i));
end
rows = 2 * n;
for j = 1:size(dirs, 1)
  lms_bkg = [0.6991 0.3009 0.0198] .* L(:);
  lms_delta = repmat(dirs(j, :), n, 1);
  p = struct('s_frequency', F(:), 'lms_bkg', lms_bkg, 'lms_delta', lms_delta, 'area', A(:));
  S_full = model.sensitivity(p);
  for i = 1:n
    fprintf(fid, 'full,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g\n', F(i), L(i), A(i), dirs(j, 1), dirs(j, 2), ...
            dirs(j, 3), S_full(i));
  end
  rows = rows + n;
end
fclose(fid);
printf('wrote %d rows to %s (%s)\n', rows, out_csv, version());
