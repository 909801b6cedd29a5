% castlecsf_reference.m -- reference values of the achromatic castleCSF for psychofeat's tests.
%
% Evaluates the upstream MATLAB castleCSF (Ashraf, Mantiuk, Chapiro & Wuerger 2024, JoV 24(4):5;
% gfxdisp/castleCSF v0.2.4, shipped read-only in <data root>/hvs/castleCSF_matlab) on a grid of
% spatial frequency x luminance x area for static (0 Hz), foveal (eccentricity 0) stimuli given by
% luminance (so the model's own D65 defaults are used for the background and modulation colour),
% and writes a CSV with
%   s_frequency [cpd], luminance [cd/m^2], area [deg^2],
%   S_castle  -- CSF_castleCSF().sensitivity(pars): the full model (achromatic mechanism plus the
%                small red-green / yellow-violet responses a D65 luminance modulation still evokes),
%   S_ach     -- CSF_castleCSF().castleCSF_ach.sensitivity(pars): the achromatic mechanism alone.
% psychofeat.csf.castle must reproduce both to 1e-6 relative (tests/test_csf.py).
%
% Run (GNU Octave >= 7; `apt-get install -y octave` on Debian) from the repository root:
%   scripts/castlecsf_reference.sh            # resolves the data root like psychofeat does
% or directly:
%   octave --no-gui --quiet scripts/castlecsf_reference.m <castleCSF_matlab dir> <out.csv>
%
% Octave cannot parse the `methods( Abstract )` block of CSF_base.m (signatures without `function`),
% so the four class files the model needs are copied to a temporary folder and that one declaration
% block is removed from the copy. It declares only abstract signatures, so no computation changes.
% The shared files themselves are never modified.

1;  % a script file, not a function file

args = argv();
if numel(args) ~= 2
  error('usage: octave --no-gui --quiet castlecsf_reference.m <castleCSF_matlab dir> <out.csv>');
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

% The grid: 0.5-30 cpd (ModelFest's range), 0.1-1000 cd/m^2 plus two mesopic/scotopic points that
% exercise the transient channel's negative peak frequency, and Gabor areas from 0.05 to 100 deg^2.
freqs = [0.5 1 2 3 4 5.66 8 11.3 16 22.6 30];
lums = [0.001 0.01 0.1 1 10 30 100 1000];
areas = [0.05 pi*0.5^2 1 10 100];
[F, L, A] = ndgrid(freqs, lums, areas);
pars = struct('s_frequency', F(:), 'luminance', L(:), 'area', A(:));

model = CSF_castleCSF();
S_castle = model.sensitivity(pars);
S_ach = model.castleCSF_ach.sensitivity(pars);

fid = fopen(out_csv, 'w');
fprintf(fid, 's_frequency,luminance,area,S_castle,S_ach\n');
for i = 1:numel(S_castle)
  fprintf(fid, '%.17g,%.17g,%.17g,%.17g,%.17g\n', F(i), L(i), A(i), S_castle(i), S_ach(i));
end
fclose(fid);
printf('wrote %d rows to %s (%s)\n', numel(S_castle), out_csv, version());
